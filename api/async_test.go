package api

import "testing"

func TestDestination(t *testing.T) {
	tests := []struct{ dest, name, qualifier string }{
		{"acs:fc:cn-hangzhou:123:functions/dest", "dest", ""},
		{"acs:fc:cn-hangzhou:123:functions/dest/prod", "dest", "prod"},
		{"acs:fc:cn-hangzhou:123:functions/dest/2", "dest", "2"},
		{"dest", "dest", ""},
		{"dest/LATEST", "dest", "LATEST"},
	}
	for _, tt := range tests {
		if got := DestinationFunction(tt.dest); got != tt.name {
			t.Errorf("DestinationFunction(%q): got %q, want %q", tt.dest, got, tt.name)
		}
		if got := DestinationQualifier(tt.dest); got != tt.qualifier {
			t.Errorf("DestinationQualifier(%q): got %q, want %q", tt.dest, got, tt.qualifier)
		}
	}
}
