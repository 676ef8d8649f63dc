package node

import (
	"net/netip"
	"slices"
	"time"

	"github.com/mwgc/mwgc/runtime/distributor"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// Status is the node's view for /status.
type Status struct {
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	Digest  string `json:"digest"`
	// State is the sync group's state: the node is Active for all groups
	// or none. "Fault" while an interface of the groups is down.
	State string `json:"state"`
	// InterfacesDown names the interfaces that hold the node in Fault.
	InterfacesDown []string      `json:"interfacesDown,omitempty"`
	Groups         []GroupStatus `json:"groups"`
	Management     any           `json:"management,omitempty"`
	// Distribution is traffic distribution (docs/distribution.md).
	Distribution *distributor.Status `json:"distribution,omitempty"`
	LastReload   *ReloadStatus       `json:"lastReload,omitempty"`
	// Alarms are the impersonation alarms raised and not cleared.
	Alarms []AlarmStatus `json:"alarms"`
	// Rollout is the digest compiled for every node of the cluster, as
	// this node's plan lists them: the cluster page compares them with
	// the digests the nodes report.
	Rollout []plan.NodeDigest `json:"rollout,omitempty"`
	// Notify counts the notify commands run; the executor fills it in.
	Notify *NotifyStatus `json:"notify,omitempty"`
}

// NotifyStatus counts the plan's notify commands by outcome.
type NotifyStatus struct {
	OK      uint64 `json:"ok"`
	Failed  uint64 `json:"failed"` // failed, timed out or could not start
	Dropped uint64 `json:"dropped"`
	// LastFailure says which command failed last, when and why.
	LastFailure string `json:"lastFailure,omitempty"`
}

// GroupStatus is one VRRP group in Status.
type GroupStatus struct {
	Name           string            `json:"name"`
	VRID           int               `json:"vrid"`
	Interface      string            `json:"interface"`
	Family         string            `json:"family"`
	State          string            `json:"state"`
	VIPs           []string          `json:"vips"` // held on the interface now
	ConfiguredVIPs []string          `json:"configuredVips"`
	AdvertsSent    uint64            `json:"advertsSent"`
	AdvertsRecv    uint64            `json:"advertsReceived"`
	Transitions    uint64            `json:"transitions"`
	Drops          map[string]uint64 `json:"drops,omitempty"`
	// ActiveAddress is the Active's advert source as this router sees it.
	ActiveAddress string `json:"activeAddress,omitempty"`
	// ActiveNode names the Active when its address is a planned peer's.
	ActiveNode string `json:"activeNode,omitempty"`
	// ActiveInterval is the advert interval in use (learned while Backup).
	ActiveInterval string `json:"activeInterval,omitempty"`
	// AcceptsTraffic: the node accepts packets addressed to the VIPs now
	// (Active, and the owner or Accept_Mode); otherwise they are dropped
	// (the VIPs of a group without Accept_Mode are filtered all the time).
	AcceptsTraffic bool `json:"acceptsTraffic"`
	// Auth is the group's authentication; nil without.
	Auth *AuthStatus `json:"auth,omitempty"`
	// Peers: what each listed peer advertised against the plan.
	Peers []PeerStatus `json:"peers,omitempty"`
	// PendingPriority / PendingInterval: a raise that waits for PendingAt
	// (the plan's rolloutGrace).
	PendingPriority uint8     `json:"pendingPriority,omitempty"`
	PendingInterval string    `json:"pendingInterval,omitempty"`
	PendingAt       time.Time `json:"pendingAt,omitzero"`
	// Unicast is the unicast transport per peer; nil for multicast groups.
	Unicast *UnicastStatus `json:"unicast,omitempty"`
}

// ReloadStatus is the outcome of the last plan file read after the first.
type ReloadStatus struct {
	At     time.Time `json:"at"`
	Result string    `json:"result"`
	Error  string    `json:"error,omitempty"`
}

// Status builds the status document (nil before the first plan).
func (n *Node) Status() *Status {
	if n.plan == nil {
		return nil
	}
	s := &Status{Cluster: n.plan.Cluster, Node: n.plan.Node, Digest: n.plan.Digest,
		State: vrrp.StateInitialize.String(), Groups: []GroupStatus{}}
	if n.sg != nil {
		s.State = n.sg.State().String()
	}
	fault := n.links.Fault()
	if fault {
		s.State = StateFault
		s.InterfacesDown = n.links.Down()
	}
	for _, m := range n.members {
		gs := GroupStatus{
			Name: m.group.Name, VRID: m.group.VRID, Interface: m.group.Interface, Family: m.group.Family,
			State: m.router.State().String(), VIPs: []string{}, ConfiguredVIPs: []string{},
		}
		for _, v := range m.heldList() {
			gs.VIPs = append(gs.VIPs, v.String())
		}
		for _, v := range m.group.VIPs {
			gs.ConfiguredVIPs = append(gs.ConfiguredVIPs, v.String())
		}
		if fault {
			gs.State = StateFault
		}
		st := m.router.Stats()
		fillStats(&gs, st)
		fillAuthStats(&gs, st)
		for _, p := range m.group.Peers {
			if gs.ActiveAddress != "" && p.Address.String() == gs.ActiveAddress {
				gs.ActiveNode = p.Name
			}
		}
		gs.Unicast = unicastStatus(m, st)
		gs.AcceptsTraffic = m.router.AcceptsVIPTraffic() && !fault
		s.Groups = append(s.Groups, gs)
	}
	if n.mgmt != nil {
		s.Management = n.mgmt.status(n)
	}
	if r := n.plan.Rollout; r != nil {
		s.Rollout = slices.Clone(r.Nodes)
	}
	if ds, ok := n.DistributionStatus(); ok {
		s.Distribution = &ds
	}
	if !n.last.At.IsZero() {
		r := n.last
		s.LastReload = &r
	}
	s.Alarms = n.alarmStatus()
	return s
}

func (m *member) heldList() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(m.held))
	for p := range m.held {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

func fillStats(gs *GroupStatus, st vrrp.Stats) {
	gs.AdvertsSent = st.AdvertsSent
	gs.AdvertsRecv = st.AdvertsReceived
	gs.Transitions = st.Transitions
	for _, r := range vrrp.DropReasons() {
		if n := st.Drops[r]; n > 0 {
			if gs.Drops == nil {
				gs.Drops = map[string]uint64{}
			}
			gs.Drops[r.String()] = n
		}
	}
	if st.ActiveAddr.IsValid() {
		gs.ActiveAddress = st.ActiveAddr.String()
	}
	if st.ActiveAdverInterval > 0 {
		gs.ActiveInterval = st.ActiveAdverInterval.String()
	}
}

// MgmtSnapshot is the management protocol's status and counters for
// metrics (send and table write errors are the executor's to fill in);
// false when it does not run.
func (n *Node) MgmtSnapshot() (mgmt.Snapshot, bool) {
	p := n.mgmt
	if p == nil {
		return mgmt.Snapshot{}, false
	}
	c := p.stats
	return mgmt.Snapshot{Status: p.status(n), ReloadsOK: c.ReloadsOK, ReloadsRefused: c.ReloadsRefused,
		KeyReloads: c.KeyReloads, KeyRefused: c.KeyRefused, TableWrites: c.TableWrites}, true
}
