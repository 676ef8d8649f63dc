package compiler

import (
	"testing"

	"github.com/mwgc/mwgc/runtime/plan"
)

// The agent's default for a plan without a reannounce section must be the
// schema's: the compiler leaves the section out when it equals the default.
func TestReannounceDefaultsAgree(t *testing.T) {
	if _, err := newLoader(); err != nil { // reads the schema's defaults
		t.Fatal(err)
	}
	d := defaults.vrrp.Announce.Reannounce
	got := plan.Reannounce{Count: d.Count, Holdoff: dur(d.Holdoff), Refresh: dur(d.Refresh)}
	if got != plan.DefaultReannounce {
		t.Errorf("schema default %+v, plan.DefaultReannounce %+v", got, plan.DefaultReannounce)
	}
}

func TestVMACInterfaceNames(t *testing.T) {
	taken := map[string]bool{"eth0": true, "vmac4-7": true}
	for _, c := range []struct {
		family string
		vrid   int
		want   string
	}{
		{plan.FamilyIPv4, 51, "vmac4-51"},
		{plan.FamilyIPv6, 51, "vmac6-51"},
		{plan.FamilyIPv4, 51, "vmac4-51-2"}, // the same VRID on a second segment
		{plan.FamilyIPv4, 51, "vmac4-51-3"},
		{plan.FamilyIPv4, 7, "vmac4-7-2"}, // an interface of the node has the name
		{plan.FamilyIPv6, 255, "vmac6-255"},
	} {
		if got := vmacInterfaceName(c.family, c.vrid, taken); got != c.want {
			t.Errorf("%s VRID %d: %q, want %q", c.family, c.vrid, got, c.want)
		}
	}
}
