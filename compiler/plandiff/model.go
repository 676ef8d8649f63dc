package plandiff

import (
	"encoding/json"
	"net/netip"
	"slices"
	"time"

	"github.com/mwgc/mwgc/compiler"
	"github.com/mwgc/mwgc/runtime/plan"
)

// clusterView is one cluster put back together from its nodes' plans:
// settings every director shares are read once, settings of one node stay
// with that node.
type clusterView struct {
	name, mode string
	nodes      map[string]*nodeView
	// groups by name, from the first director's plan, with the per-node
	// fields (interface, source, peers) cleared.
	groups   map[string]*groupView
	announce *plan.Announce // nil without VRRP
	mgmt     *plan.Management
	// extra holds the plan's other top-level sections (such as
	// distribution) by JSON name, from the first director that has them,
	// else the first node: reported field by field, generically.
	extra     map[string]json.RawMessage
	extraFrom map[string]bool // the section came from a director
	// vrrpExtra holds the node-level VRRP fields other than priority,
	// announce and groups, from the first director.
	vrrpExtra *plan.VRRP
	// grace is vrrp.rolloutGrace: how long a raised own priority or a
	// longer own interval waits after a plan lands (the plan as election
	// policy, runtime/vrrp/policy.go).
	grace time.Duration
	// dist is the distribution section of the first director (the one
	// with the table), nil when the cluster does not distribute.
	dist *plan.Distribution
}

type nodeView struct {
	name   string
	digest string
	// priority is 0 for a node without VRRP (scanning only).
	priority int
	ifaces   map[string]plan.Interface
	mgmtIP   netip.Addr // invalid without management
	// groups the node runs, by name: interface and source.
	groups map[string]plan.Group
}

type groupView struct {
	plan.Group
	segment string
	// external peers by name (the plan lists them in every director's peers).
	external map[string]plan.Peer
}

// repoView is a whole snapshot.
type repoView struct {
	segments map[string]compiler.Segment
	clusters map[string]*clusterView
}

func newRepoView(s *compiler.Snapshot) *repoView {
	r := &repoView{segments: map[string]compiler.Segment{}, clusters: map[string]*clusterView{}}
	if s == nil {
		return r
	}
	for _, seg := range s.Segments {
		r.segments[seg.Name] = seg
	}
	for _, np := range s.Plans {
		cl := r.clusters[np.Cluster]
		if cl == nil {
			cl = &clusterView{name: np.Cluster, mode: np.Plan.Mode, nodes: map[string]*nodeView{}, groups: map[string]*groupView{}}
			r.clusters[np.Cluster] = cl
		}
		cl.add(np.Plan)
	}
	return r
}

func (cl *clusterView) add(p *plan.Plan) {
	n := &nodeView{name: p.Node, digest: p.Digest, ifaces: map[string]plan.Interface{}, groups: map[string]plan.Group{}}
	for _, in := range p.Interfaces {
		n.ifaces[in.Name] = in
	}
	if p.Management != nil {
		n.mgmtIP = p.Management.Address
		if cl.mgmt == nil {
			m := *p.Management
			m.Address, m.Members = netip.Addr{}, nil
			m.Interface = n.ifaces[p.Management.Interface].Segment // shared: the segment
			cl.mgmt = &m
		}
	}
	cl.addExtra(p)
	if p.Distribution != nil && (cl.dist == nil || (p.VRRP != nil && cl.dist.Slots == 0)) {
		cl.dist = p.Distribution
	}
	if p.VRRP != nil {
		n.priority = p.VRRP.Priority
		if cl.announce == nil {
			a := p.VRRP.Announce
			cl.announce = &a
			cl.vrrpExtra = p.VRRP
			cl.grace = p.VRRP.RolloutGrace.D()
		}
		for _, g := range p.VRRP.Groups {
			n.groups[g.Name] = g
			if cl.groups[g.Name] != nil {
				continue
			}
			gv := &groupView{Group: g, segment: n.ifaces[g.Interface].Segment, external: map[string]plan.Peer{}}
			for _, peer := range g.Peers {
				if peer.External {
					gv.external[peer.Name] = peer
				}
			}
			gv.Interface, gv.Source, gv.Peers = "", netip.Addr{}, nil
			cl.groups[g.Name] = gv
		}
	}
	cl.nodes[p.Node] = n
}

// knownSections are the top-level plan fields described by name.
var knownSections = []string{"apiVersion", "cluster", "node", "mode", "digest", "interfaces", "vrrp", "management", "distribution", "rollout"}

func (cl *clusterView) addExtra(p *plan.Plan) {
	if cl.extra == nil {
		cl.extra, cl.extraFrom = map[string]json.RawMessage{}, map[string]bool{}
	}
	director := p.VRRP != nil
	// Only the sections not known by name are normalised: this runs for
	// every plan of both sides.
	b, _ := json.Marshal(p)
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(b, &raw)
	for k, v := range raw {
		if slices.Contains(knownSections, k) || string(v) == "null" {
			continue
		}
		v = jsonFields(map[string]json.RawMessage{k: v})[k]
		if _, ok := cl.extra[k]; !ok || (director && !cl.extraFrom[k]) {
			cl.extra[k], cl.extraFrom[k] = v, director
		}
	}
}

// candidate is a router that may be Active in a group.
type candidate struct {
	name     string
	priority int
	external bool
}

// candidates lists the routers of group g, best first.
func (cl *clusterView) candidates(g string) []candidate {
	var out []candidate
	for _, n := range cl.nodes {
		if _, ok := n.groups[g]; ok {
			out = append(out, candidate{name: n.name, priority: n.priority})
		}
	}
	if gv := cl.groups[g]; gv != nil {
		for _, p := range gv.external {
			out = append(out, candidate{name: p.Name, priority: p.Priority, external: true})
		}
	}
	slices.SortFunc(out, func(a, b candidate) int {
		if a.priority != b.priority {
			return b.priority - a.priority
		}
		if a.name < b.name {
			return -1
		}
		return 1
	})
	return out
}

// directors lists the cluster's mwgc directors, best first.
func (cl *clusterView) directors() []*nodeView {
	var out []*nodeView
	for _, n := range cl.nodes {
		if n.priority > 0 {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b *nodeView) int { return b.priority - a.priority })
	return out
}

// priorityOf returns the priority of a candidate in group g (0: none).
func (cl *clusterView) priorityOf(g, name string) int {
	for _, c := range cl.candidates(g) {
		if c.name == name {
			return c.priority
		}
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// unionKeys returns the keys of both maps, sorted.
func unionKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}
