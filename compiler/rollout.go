package compiler

import "github.com/mwgc/mwgc/runtime/plan"

// addRollout gives every director of a cluster the digest compiled for
// each node of its cluster, so the Active can show how far a change has
// rolled out (runtime/plan: Rollout, which no digest covers). plans are
// sorted by cluster.
func addRollout(plans []NodePlan) error {
	for start := 0; start < len(plans); {
		end := start
		for end < len(plans) && plans[end].Cluster == plans[start].Cluster {
			end++
		}
		r := &plan.Rollout{Nodes: []plan.NodeDigest{}}
		for _, np := range plans[start:end] {
			d, err := plan.ComputeDigest(np.Plan)
			if err != nil {
				return err
			}
			r.Nodes = append(r.Nodes, plan.NodeDigest{Node: np.Node, Digest: d})
		}
		for _, np := range plans[start:end] {
			if np.Plan.VRRP != nil && np.Plan.Management != nil {
				np.Plan.Rollout = r
			}
		}
		start = end
	}
	return nil
}
