package compiler

import (
	"testing"

	"github.com/mwgc/mwgc/runtime/plan"
)

// TestRolloutNamesEveryPlan: each director carries the digest of every
// node's plan of its cluster, exactly the digest that node's plan has;
// scanning-only nodes carry none.
func TestRolloutNamesEveryPlan(t *testing.T) {
	res, err := Load([]string{"../examples/transparent-router", "../examples/shared-segment"})
	if err != nil {
		t.Fatal(err)
	}
	plans, err := res.Plans()
	if err != nil {
		t.Fatal(err)
	}
	digest := map[[2]string]string{}
	for _, np := range plans {
		b, err := plan.Encode(np.Plan)
		if err != nil {
			t.Fatal(err)
		}
		p, err := plan.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		digest[[2]string{np.Cluster, np.Node}] = p.Digest
	}
	directors := 0
	for _, np := range plans {
		r := np.Plan.Rollout
		if np.Plan.VRRP == nil {
			if r != nil {
				t.Errorf("scanning node %s carries a roll-out table", np.Node)
			}
			continue
		}
		directors++
		members := 0
		for _, other := range plans {
			if other.Cluster == np.Cluster {
				members++
			}
		}
		if r == nil || len(r.Nodes) != members {
			t.Fatalf("%s/%s: roll-out %+v, want %d nodes", np.Cluster, np.Node, r, members)
		}
		for _, nd := range r.Nodes {
			if want := digest[[2]string{np.Cluster, nd.Node}]; nd.Digest != want {
				t.Errorf("%s lists %s with %s, its plan has %s", np.Node, nd.Node, nd.Digest, want)
			}
		}
	}
	if directors != 6 {
		t.Errorf("%d directors checked, want 6", directors)
	}
}
