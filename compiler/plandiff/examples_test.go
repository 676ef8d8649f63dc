package plandiff

import (
	"bytes"
	"testing"
)

// TestExamples compares every bundled example with itself, with nothing
// and nothing with it: no changes, all added, all removed.
func TestExamples(t *testing.T) {
	for _, ex := range []string{"ha-proxy", "transparent-router", "shared-segment"} {
		t.Run(ex, func(t *testing.T) {
			s := snapshotOf(t, "../../examples/"+ex)
			n := len(s.Plans)
			if r := Diff(s, s); r.HasChanges() || r.Summary.PlansUnchanged != n {
				t.Errorf("self: changes %v, unchanged %d of %d", r.HasChanges(), r.Summary.PlansUnchanged, n)
			}
			added := Diff(nil, s)
			if !added.HasChanges() || added.Summary.PlansAdded != n || len(added.Segments) != len(s.Segments) {
				t.Errorf("from nothing: %+v", added.Summary)
			}
			for _, cl := range added.Clusters {
				if cl.Op != OpAdd || cl.Active == nil || cl.Active.Before != "" || cl.Active.After == "" {
					t.Errorf("cluster %s from nothing: op %s, active %+v", cl.Name, cl.Op, cl.Active)
				}
			}
			removed := Diff(s, nil)
			if removed.Summary.PlansRemoved != n || removed.Summary.ClustersRemoved != len(removed.Clusters) {
				t.Errorf("to nothing: %+v", removed.Summary)
			}
			for _, r := range []*Report{added, removed} {
				for _, w := range []func(*bytes.Buffer, *Report) error{
					func(b *bytes.Buffer, r *Report) error { return WriteText(b, r) },
					func(b *bytes.Buffer, r *Report) error { return WriteMarkdown(b, r) },
					func(b *bytes.Buffer, r *Report) error { return WriteJSON(b, r) },
				} {
					var b bytes.Buffer
					if err := w(&b, r); err != nil || b.Len() == 0 {
						t.Errorf("writer: %v, %d bytes", err, b.Len())
					}
				}
			}
		})
	}
}
