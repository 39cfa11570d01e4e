package main

import "testing"

func TestGOMAXPROCSFlag(t *testing.T) {
	none := func(string) string { return "" }
	for _, tt := range []struct {
		args    []string
		want    int
		wantErr bool
	}{
		{nil, 0, false},
		{[]string{"-gomaxprocs", "1"}, 1, false},
		{[]string{"-gomaxprocs=4"}, 4, false},
		{[]string{"-gomaxprocs", "-1"}, 0, true},
	} {
		cfg, err := parseConfig(append(tt.args, "-memory-budget", "-1"), none)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: got error %v, want error %v", tt.args, err, tt.wantErr)
			continue
		}
		if err == nil && cfg.GOMAXPROCS != tt.want {
			t.Errorf("%q: got GOMAXPROCS %d, want %d", tt.args, cfg.GOMAXPROCS, tt.want)
		}
	}
}
