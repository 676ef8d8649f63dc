package e2e

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mwgc/mwgc/runtime/plan"
)

// TestClustersCompile: every cluster the end-to-end tests run compiles,
// and what matters to them comes out of the compiler as they wrote it.
func TestClustersCompile(t *testing.T) {
	for _, c := range []*Cluster{threeDirectors(), twoSegments(), pair()} {
		for _, d := range c.Directors {
			p := c.Plan(d.Node)
			if p.VRRP == nil || p.VRRP.Priority != d.Priority || len(p.VRRP.Groups) != len(c.Groups) || p.Management == nil {
				t.Fatalf("%s/%s: compiled plan %+v", c.Name, d.Node, p)
			}
			for i, g := range p.VRRP.Groups {
				want := c.Groups[i]
				if g.Name != want.Name || g.VRID != want.VRID || g.Interface != want.Iface || g.Family != want.Family {
					t.Errorf("%s/%s group %d: %s %d %s %s", c.Name, d.Node, i, g.Name, g.VRID, g.Interface, g.Family)
				}
				if len(g.Peers) != len(c.Directors)-1 {
					t.Errorf("%s/%s group %s: peers %+v", c.Name, d.Node, g.Name, g.Peers)
				}
			}
		}
	}
	// A changed cluster compiles to a changed plan; the first is kept.
	c := pair()
	before := c.Plan("a")
	c.Groups[0].Interval = 10 * time.Millisecond
	if got := c.Plan("a").VRRP.Groups[0].AdvertInterval; got != plan.Duration(10*time.Millisecond) {
		t.Errorf("interval after the change: %v", got)
	}
	c.Groups[0].Interval = 0
	x, _ := plan.Encode(before)
	y, _ := plan.Encode(c.Plan("a"))
	if diff := cmp.Diff(string(x), string(y)); diff != "" {
		t.Errorf("the same cluster compiled differently (-first +second):\n%s", diff)
	}
}
