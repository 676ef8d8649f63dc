package compiler

import (
	"net/netip"
	"strings"

	"github.com/mwgc/mwgc/runtime/plan"
)

// Snapshot is a valid repository as the tools that show it need it
// (`mwgc plan`, `mwgc graph`): its segments, which plans do not carry, and
// the plan of every node with its digest filled in.
type Snapshot struct {
	Segments []Segment // sorted by name
	Plans    []NodePlan
}

// Segment is a segment as the repository defines it.
type Segment struct {
	Name      string
	CIDRs     []netip.Prefix // as written, masked
	Protected bool
	// Waiver is the written reason for VIPs or management IPs on this
	// segment although it is not protected; empty without a waiver.
	Waiver string
}

// Snapshot builds the snapshot; like Plans it refuses a repository with
// errors.
func (r *Result) Snapshot() (*Snapshot, error) {
	plans, err := r.Plans()
	if err != nil {
		return nil, err
	}
	for _, np := range plans {
		d, err := plan.ComputeDigest(np.Plan)
		if err != nil {
			return nil, err
		}
		np.Plan.Digest = d
	}
	s := &Snapshot{Plans: plans}
	for _, name := range sortedKeys(r.repo.segments) {
		seg := r.repo.segments[name]
		out := Segment{Name: name, Protected: seg.doc.Protected}
		for _, text := range seg.doc.CIDRs {
			if p, err := netip.ParsePrefix(text); err == nil {
				out.CIDRs = append(out.CIDRs, p.Masked())
			}
		}
		if seg.doc.Waiver != nil {
			out.Waiver = strings.TrimSpace(seg.doc.Waiver.Reason)
		}
		s.Segments = append(s.Segments, out)
	}
	return s, nil
}
