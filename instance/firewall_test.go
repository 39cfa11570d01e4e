package instance

import (
	"strings"
	"testing"
)

func TestFirewallRuleset(t *testing.T) {
	tests := []struct {
		name         string
		denyOutbound bool
		install      bool
		want, absent []string
	}{
		{"outbound allowed", false, true,
			[]string{"table inet fcd-x {", `iifname "x0" reject`, "169.254.0.0/16", "100.100.100.200", "fd00:ec2::254", `iifname "x0" oifname "x0" drop`, `oifname "x0" drop`,
				"set offline4 {", `iifname "x0" ip saddr @offline4 reject with icmpx admin-prohibited comment "internetAccess false"`},
			[]string{"outbound denied"}},
		{"outbound denied", true, true, []string{"outbound denied"}, nil},
		{"remove", false, false, []string{"delete table inet fcd-x"}, []string{"table inet fcd-x {"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newFirewall("x", "x0", tt.denyOutbound).ruleset(tt.install)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("ruleset lacks %q:\n%s", w, got)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("ruleset holds %q:\n%s", a, got)
				}
			}
		})
	}
}
