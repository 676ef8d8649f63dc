package node

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLinkTracker(t *testing.T) {
	up := func(i int, name string) LinkState { return LinkState{Index: i, Name: name, Up: true} }
	down := func(i int, name string) LinkState { return LinkState{Index: i, Name: name} }
	type step struct {
		what    string
		full    bool
		links   []LinkState
		watch   []string // non-nil: a Watch step instead of Observe
		change  faultChange
		wantDwn []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"no watcher: unknown interfaces count as up", []step{
			{what: "watch", watch: []string{"eth0", "eth1"}, change: faultUnchanged},
		}},
		{"down at start", []step{
			{what: "listing", full: true, links: []LinkState{up(1, "eth0"), down(2, "eth1")}, change: faultUnchanged},
			{what: "watch", watch: []string{"eth1", "eth0", "eth0"}, change: faultEntered, wantDwn: []string{"eth1"}},
			{what: "eth1 up", links: []LinkState{up(2, "eth1")}, change: faultLeft},
		}},
		{"one of two down, then the other, then both up", []step{
			{what: "listing", full: true, links: []LinkState{up(1, "eth0"), up(2, "eth1")}},
			{what: "watch", watch: []string{"eth0", "eth1"}},
			{what: "eth1 down", links: []LinkState{down(2, "eth1")}, change: faultEntered, wantDwn: []string{"eth1"}},
			{what: "eth0 down", links: []LinkState{down(1, "eth0")}, change: faultUnchanged, wantDwn: []string{"eth0", "eth1"}},
			{what: "eth1 up", links: []LinkState{up(2, "eth1")}, change: faultUnchanged, wantDwn: []string{"eth0"}},
			{what: "eth0 up", links: []LinkState{up(1, "eth0")}, change: faultLeft},
		}},
		{"unwatched interfaces do not matter", []step{
			{what: "listing", full: true, links: []LinkState{up(1, "eth0"), up(2, "eth1")}},
			{what: "watch", watch: []string{"eth0"}},
			{what: "eth1 down", links: []LinkState{down(2, "eth1")}, change: faultUnchanged},
			{what: "reload adds a group on eth1", watch: []string{"eth0", "eth1"}, change: faultEntered, wantDwn: []string{"eth1"}},
			{what: "reload removes it", watch: []string{"eth0"}, change: faultLeft},
		}},
		{"deleted, missing from a listing, renamed", []step{
			{what: "listing", full: true, links: []LinkState{up(1, "eth0"), up(2, "eth1")}},
			{what: "watch", watch: []string{"eth0", "eth1"}},
			{what: "eth1 deleted", links: []LinkState{{Index: 2, Name: "eth1", Gone: true}}, change: faultEntered, wantDwn: []string{"eth1"}},
			{what: "eth1 recreated", links: []LinkState{up(7, "eth1")}, change: faultLeft},
			{what: "relisting without eth0", full: true, links: []LinkState{up(7, "eth1")}, change: faultEntered, wantDwn: []string{"eth0"}},
			{what: "eth0 back", links: []LinkState{up(1, "eth0")}, change: faultLeft},
			{what: "eth0 renamed away", links: []LinkState{up(1, "wan0")}, change: faultEntered, wantDwn: []string{"eth0"}},
			{what: "another device renamed to eth0", links: []LinkState{up(9, "eth0")}, change: faultLeft},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newLinkTracker()
			for _, s := range tt.steps {
				var got faultChange
				if s.watch != nil {
					got = tr.Watch(s.watch)
				} else {
					got = tr.Observe(s.full, s.links)
				}
				if got != s.change {
					t.Errorf("%s: change %v, want %v", s.what, got, s.change)
				}
				if diff := cmp.Diff(s.wantDwn, tr.Down()); diff != "" {
					t.Errorf("%s: down (-want +got):\n%s", s.what, diff)
				}
				if tr.Fault() != (len(s.wantDwn) > 0) {
					t.Errorf("%s: Fault() = %v with %v down", s.what, tr.Fault(), s.wantDwn)
				}
			}
		})
	}
}
