package plandiff

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
)

// view builds a one-group cluster from director priorities (0: scanning
// only); ext adds an external peer with that priority.
func view(preempt bool, prios map[string]int, ext int) *clusterView {
	cl := emptyView("web")
	i := 10
	for _, name := range sortedKeys(prios) {
		i++
		p := &plan.Plan{Cluster: "web", Node: name, Digest: name, Interfaces: []plan.Interface{{Name: "eth0", Segment: "proxy"}}}
		if prios[name] > 0 {
			g := plan.Group{Name: "proxy", VRID: 51, Interface: "eth0", Family: plan.FamilyIPv4, AdvertInterval: plan.Duration(100 * time.Millisecond),
				Preempt: preempt, Source: netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i)), VIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")}}
			if ext > 0 {
				g.Peers = append(g.Peers, plan.Peer{Name: "ext", Address: netip.MustParseAddr("192.0.2.5"), Priority: ext, External: true})
			}
			p.VRRP = &plan.VRRP{Priority: prios[name], Groups: []plan.Group{g}}
		}
		cl.add(p)
	}
	return cl
}

func TestElect(t *testing.T) {
	type m = map[string]int
	for _, tc := range []struct {
		name          string
		before, after *clusterView
		kind          moveKind
		from, to      string
		takeover      time.Duration
		blocked       string
	}{
		{"nothing changes", view(true, m{"a": 200, "b": 100}, 0), view(true, m{"a": 200, "b": 100}, 0), stays, "a", "a", 0, ""},
		{"backup rises, preempt", view(true, m{"a": 200, "b": 100}, 0), view(true, m{"a": 200, "b": 250}, 0), preempts, "a", "b",
			300*time.Millisecond + 6*100*time.Millisecond/256, ""},
		{"backup rises, no preempt", view(false, m{"a": 200, "b": 100}, 0), view(false, m{"a": 200, "b": 250}, 0), stays, "a", "a", 0, "b"},
		{"owner preempts without preempt", view(false, m{"a": 200, "b": 100}, 0), view(false, m{"a": 200, "b": 255}, 0), preempts, "a", "b", 300*time.Millisecond + 100*time.Millisecond/256, ""},
		{"Active falls below", view(true, m{"a": 200, "b": 100}, 0), view(true, m{"a": 50, "b": 100}, 0), preempts, "a", "b",
			300*time.Millisecond + 156*100*time.Millisecond/256, ""},
		{"Active falls below, no preempt", view(false, m{"a": 200, "b": 100}, 0), view(false, m{"a": 50, "b": 100}, 0), stays, "a", "a", 0, "b"},
		{"Active becomes a scanner", view(true, m{"a": 200, "b": 100}, 0), view(true, m{"a": 0, "b": 100}, 0), leaves, "a", "b", 156 * 100 * time.Millisecond / 256, ""},
		{"Active removed", view(true, m{"a": 200, "b": 100, "c": 150}, 0), view(true, m{"b": 100, "c": 150}, 0), leaves, "a", "c", 106 * 100 * time.Millisecond / 256, ""},
		{"second best rises, not above", view(true, m{"a": 200, "b": 100}, 0), view(true, m{"a": 200, "b": 199}, 0), stays, "a", "a", 0, ""},
		{"external peer preempts although preempt is off", view(false, m{"a": 200, "b": 100}, 0), view(false, m{"a": 200, "b": 100}, 250), preempts, "a", "ext",
			300*time.Millisecond + 6*100*time.Millisecond/256, ""},
		{"external peer removed while Active", view(true, m{"a": 200, "b": 100}, 250), view(true, m{"a": 200, "b": 100}, 0), leaves, "ext", "a", 56 * 100 * time.Millisecond / 256, ""},
		{"group gone", view(true, m{"a": 200}, 0), view(true, m{"a": 0}, 0), ends, "a", "", 0, ""},
		{"new group", view(true, m{"a": 0, "b": 0}, 0), view(true, m{"a": 200, "b": 100}, 0), starts, "", "a", 300*time.Millisecond + 56*100*time.Millisecond/256, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := elect(tc.before, tc.after, "proxy", false, "")
			if o.kind != tc.kind || o.before != tc.from || o.after != tc.to || o.takeover != tc.takeover || o.blocked != tc.blocked {
				t.Errorf("got kind %d %q → %q takeover %v blocked %q; want kind %d %q → %q takeover %v blocked %q",
					o.kind, o.before, o.after, o.takeover, o.blocked, tc.kind, tc.from, tc.to, tc.takeover, tc.blocked)
			}
		})
	}
}

func TestElectRestart(t *testing.T) {
	b := view(true, map[string]int{"a": 200, "b": 100}, 0)
	a := view(true, map[string]int{"a": 200, "b": 100}, 0)
	g := a.nodes["a"].groups["proxy"]
	g.Source = netip.MustParseAddr("192.0.2.99")
	a.nodes["a"].groups["proxy"] = g
	if o := elect(b, a, "proxy", false, ""); o.kind != restarts || o.after != "a" {
		t.Errorf("with preempt: got kind %d after %q, want restarts and a back", o.kind, o.after)
	}
	for _, cl := range []*clusterView{b, a} {
		cl.groups["proxy"].Preempt = false
	}
	if o := elect(b, a, "proxy", false, ""); o.kind != restarts || o.after != "b" {
		t.Errorf("without preempt: got kind %d after %q, want restarts and b keeping the VIPs", o.kind, o.after)
	}
	if o := elect(b, b, "proxy", true, ""); o.kind != starts || o.after != "a" {
		t.Errorf("replaced group: got kind %d after %q, want starts with a", o.kind, o.after)
	}
	// On a node Active for its other groups, a new virtual router joins
	// as Active at once, even where another director has a better priority.
	if o := elect(b, b, "proxy", true, "b"); o.kind != joins || o.after != "b" || o.takeover != 0 {
		t.Errorf("joining: got kind %d after %q takeover %v, want joins with b at once", o.kind, o.after, o.takeover)
	}
}
