package node

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/mwgc/mwgc/runtime/impersonation"
	"github.com/mwgc/mwgc/runtime/keyfile"
	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
	"github.com/mwgc/mwgc/runtime/vrrpplan"
)

// Authenticated VRRP, the plan as election policy and impersonation alarms
// (docs/security.md). The VRRP key files the plan names are read in the
// Prepare of every plan (a missing or unsafe one refuses the plan) and
// again every second: a changed key is a Reconfigure of the groups using
// it (no restart, no transition). The engine's auth-* drops become
// auth-failure alarms; frames the executor's watchers saw with this node's
// own address as source become own-address alarms.

// keyRereadEvery is how often the VRRP key files are read again.
const keyRereadEvery = time.Second

// authPart is the node's state for authentication and alarms.
type authPart struct {
	keys   vrrpplan.Keys     // in use, by file
	prints map[string]string // file -> fingerprint of the key in use
	keyErr map[string]string // file -> last error logged
	next   time.Time         // next re-read; zero without key files

	alarms  *impersonation.Tracker
	lastLog map[string]time.Time // disagreement log lines, rate-limited
	watched []string             // interfaces the executor watches
}

func newAuthPart() authPart {
	return authPart{keys: vrrpplan.Keys{}, prints: map[string]string{}, keyErr: map[string]string{},
		alarms: impersonation.New(nil, nil), lastLog: map[string]time.Time{}}
}

// groupConfig turns a plan group into the engine's configuration with the
// keys given.
func groupConfig(p *plan.Plan, g *plan.Group, keys vrrpplan.Keys) vrrp.Config {
	cfg, err := vrrpplan.Config(p, g, keys)
	if err != nil {
		// Callers pass keys for every file of the plan (provisional ones
		// while building); reaching this is a bug.
		panic("node: " + err.Error())
	}
	cfg.Name = g.Name // sync-group reasons name the group
	return cfg
}

// provisionalKeys are the keys to check a new plan's engine settings with
// before its key files are read: those in use, and a stand-in of valid
// length for files not read yet. The real ones come with Prepared.
func (n *Node) provisionalKeys(p *plan.Plan) vrrpplan.Keys {
	keys := vrrpplan.Keys{}
	for _, f := range vrrpplan.KeyFiles(p) {
		if k, ok := n.auth.keys[f]; ok {
			keys[f] = k
		} else {
			keys[f] = make([]byte, keyfile.MinLen)
		}
	}
	return keys
}

// isVRRPKeyFile reports whether path is one of p's VRRP key files.
func isVRRPKeyFile(p *plan.Plan, path string) bool {
	return p != nil && slices.Contains(vrrpplan.KeyFiles(p), path)
}

// readKeys checks the VRRP key files a Prepare read.
func (n *Node) readKeys(c *candidate, results []Result) (vrrpplan.Keys, error) {
	keys := vrrpplan.Keys{}
	for _, f := range vrrpplan.KeyFiles(c.plan) {
		var file *File
		for i := range results {
			if rf, ok := results[i].Step.(ReadFile); ok && rf.Path == f {
				file = &results[i].File
			}
		}
		if file == nil {
			return nil, fmt.Errorf("VRRP key file %s was not read", f)
		}
		k, err := keyfile.Check(file.Data, file.Mode)
		if err != nil {
			n.emit(KeyFileRefused{Path: f})
			return nil, fmt.Errorf("VRRP key file %s: %w", f, err)
		}
		keys[f] = k
	}
	return keys, nil
}

// withKeys puts the real keys into a candidate built with provisional
// ones: kept groups are compared again, added routers made anew.
func (n *Node) withKeys(c *candidate, keys vrrpplan.Keys) error {
	for i := range c.kept {
		k := &c.kept[i]
		k.cfg = groupConfig(c.plan, &k.group, keys)
		k.reconf = !configEqual(groupConfig(n.plan, &k.m.group, n.auth.keys), k.cfg)
		if k.reconf {
			if err := k.m.router.CheckReconfigure(k.cfg); err != nil {
				return fmt.Errorf("vrrp group %s: %w", k.group.Name, err)
			}
		}
	}
	for i, m := range c.added {
		r, err := vrrp.NewRouter(groupConfig(c.plan, &m.group, keys))
		if err != nil {
			return fmt.Errorf("vrrp group %s: %w", m.group.Name, err)
		}
		c.added[i] = newMember(m.group, r)
	}
	return nil
}

// commitAuth takes the keys and addresses of the committed plan and tells
// the executor which interfaces to watch.
func (n *Node) commitAuth(now time.Time, keys vrrpplan.Keys) {
	n.auth.keys = keys
	n.auth.prints = map[string]string{}
	for f, k := range keys {
		n.auth.prints[f] = keyfile.Fingerprint(k)
	}
	n.auth.next = time.Time{}
	if len(keys) > 0 {
		n.auth.next = now.Add(keyRereadEvery)
	}
	own, peers, ifaces := watchSet(n.plan)
	n.auth.alarms.SetAddresses(own, peers)
	if !slices.Equal(ifaces, n.auth.watched) {
		n.auth.watched = ifaces
		n.emit(Watch{Interfaces: ifaces, Addresses: append(own, peers...)})
	}
}

// watchSet is what the alarms look for: the node's own addresses, its
// peers', and the interfaces that carry a VRRP group.
func watchSet(p *plan.Plan) (own, peers []netip.Addr, ifaces []string) {
	for _, in := range p.Interfaces {
		for _, pr := range in.Addresses {
			own = append(own, pr.Addr())
		}
		if in.LinkLocal.IsValid() {
			own = append(own, in.LinkLocal)
		}
	}
	if p.VRRP != nil {
		for _, g := range p.VRRP.Groups {
			if !slices.Contains(ifaces, g.Interface) {
				ifaces = append(ifaces, g.Interface)
			}
			for _, peer := range g.Peers {
				peers = append(peers, peer.Address)
			}
		}
	}
	slices.Sort(ifaces)
	return own, peers, ifaces
}

// authDeadline is the next key re-read.
func (n *Node) authDeadline() time.Time { return n.auth.next }

// authTick asks for the key files again when due and clears quiet alarms.
func (n *Node) authTick(now time.Time) {
	for _, ev := range n.auth.alarms.Expire(now) {
		n.logAlarm(&ev)
	}
	if n.auth.next.IsZero() || now.Before(n.auth.next) {
		return
	}
	n.auth.next = now.Add(keyRereadEvery)
	for _, f := range vrrpplan.KeyFiles(n.plan) {
		n.emit(ReadFile{Path: f})
	}
}

// vrrpKeyRead takes a re-read key file: a changed key is put in force by
// reconfiguring every group; an unusable file is logged once per distinct
// error and the key in use stays.
func (n *Node) vrrpKeyRead(now time.Time, ev FileRead) {
	k, err := ev.Err, error(nil)
	var key []byte
	if k == nil {
		key, err = keyfile.Check(ev.File.Data, ev.File.Mode)
	} else {
		err = k
	}
	if err != nil {
		if msg := err.Error(); msg != n.auth.keyErr[ev.Path] {
			n.auth.keyErr[ev.Path] = msg
			n.emit(KeyFileRefused{Path: ev.Path})
			n.log.Error("VRRP key file unusable; the key in use stays", "file", ev.Path, "err", err)
		}
		return
	}
	delete(n.auth.keyErr, ev.Path)
	fp := keyfile.Fingerprint(key)
	if fp == n.auth.prints[ev.Path] {
		return
	}
	keys := cloneKeys(n.auth.keys)
	keys[ev.Path] = key
	for _, m := range n.members {
		if err := m.router.CheckReconfigure(groupConfig(n.plan, &m.group, keys)); err != nil {
			n.log.Error("VRRP key file change refused; the key in use stays", "file", ev.Path, "group", m.group.Name, "err", err)
			return
		}
	}
	n.auth.keys[ev.Path], n.auth.prints[ev.Path] = key, fp
	for i, m := range n.members {
		n.execute(now, n.sg.Step(now, i, vrrp.Reconfigure{Config: groupConfig(n.plan, &m.group, n.auth.keys)}))
	}
	n.log.Info("VRRP key file changed; new key in use", "file", ev.Path, "key", fp)
}

// configEqual compares two engine configurations, keys included.
func configEqual(a, b vrrp.Config) bool { return reflect.DeepEqual(a, b) }

func cloneKeys(k vrrpplan.Keys) vrrpplan.Keys {
	out := make(vrrpplan.Keys, len(k))
	for f, v := range k {
		out[f] = v
	}
	return out
}

// authAction handles the engine's authentication and policy reports.
func (n *Node) authAction(now time.Time, m *member, act vrrp.Action) {
	g := m.group.Name
	switch act := act.(type) {
	case vrrp.Dropped:
		if !act.Reason.IsAuthFailure() {
			return
		}
		n.emit(Impersonation{Kind: impersonation.AuthFailure.String()})
		n.logAlarm(n.auth.alarms.AuthFailure(now, g, act.Src, act.Reason.String()))
	case vrrp.Disagreed:
		reason := act.Reason.String()
		n.emit(PolicyDisagreement{Group: g, Peer: act.Peer, Reason: reason})
		key := g + "|" + act.Peer.String() + "|" + reason
		if last, ok := n.auth.lastLog[key]; !ok || now.Sub(last) > dropLogEvery {
			n.auth.lastLog[key] = now
			n.log.Warn("advert disagrees with the plan", "group", g, "peer", act.Peer, "reason", reason, "err", act.Err)
		}
	}
}

// watchFrame takes frames an executor's watcher saw on an interface.
func (n *Node) watchFrame(now time.Time, ev WatchFrame) {
	ev2 := n.auth.alarms.Frame(now, ev.Interface, ev.Src, ev.MAC)
	if n.auth.alarms.IsOwn(ev.Src) {
		n.emit(Impersonation{Kind: impersonation.OwnAddress.String(), Count: max(ev.Count, 1)})
	}
	n.logAlarm(ev2)
}

func (n *Node) logAlarm(ev *impersonation.Event) {
	if ev == nil {
		return
	}
	macs := make([]string, len(ev.MACs))
	for i, m := range ev.MACs {
		macs[i] = m.MAC
	}
	args := []any{"kind", ev.Kind.String(), "address", ev.Addr, "where", ev.Where, "macs", macs,
		"since", ev.Since.Format(time.RFC3339Nano), "count", ev.Count, "since_last_line", ev.Unlogged}
	if ev.Reason != "" {
		args = append(args, "reason", ev.Reason)
	}
	switch {
	case ev.Cleared:
		n.log.Info("impersonation alarm cleared", args...)
	case ev.Raised:
		n.log.Error("impersonation alarm: someone sends VRRP in a cluster member's name", args...)
	default:
		n.log.Warn("impersonation alarm continues", args...)
	}
}

// ---- Events and effects of this part.

// WatchFrame reports VRRP frames a watcher saw arrive on Interface with
// IP source Src and Ethernet source MAC: Count of them since the last
// report (the executor may coalesce a flood).
type WatchFrame struct {
	Interface string
	Src       netip.Addr
	MAC       net.HardwareAddr
	Count     uint64
}

func (WatchFrame) isEvent() {}

// Watch asks the executor to watch exactly these interfaces for VRRP
// frames (runtime/vrrpwatch) and report those whose IP source is one of
// Addresses as WatchFrame events.
type Watch struct {
	Interfaces []string
	Addresses  []netip.Addr
}

// Impersonation reports evidence for an alarm of Kind (a metric).
type Impersonation struct {
	Kind  string
	Count uint64
}

// PolicyDisagreement reports an advert that disagrees with the plan (a metric).
type PolicyDisagreement struct {
	Group  string
	Peer   netip.Addr
	Reason string
}

// KeyFileRefused reports a VRRP key file refused (a metric).
type KeyFileRefused struct{ Path string }

func (Watch) isEffect()              {}
func (Impersonation) isEffect()      {}
func (PolicyDisagreement) isEffect() {}
func (KeyFileRefused) isEffect()     {}

// ---- Status.

// AlarmStatus is one impersonation alarm in /status.
type AlarmStatus struct {
	Kind    string                  `json:"kind"`
	Address string                  `json:"address"`
	Where   string                  `json:"where"`
	MAC     string                  `json:"mac,omitempty"`
	MACs    []impersonation.MACSeen `json:"macs,omitempty"`
	Reason  string                  `json:"reason,omitempty"`
	Since   time.Time               `json:"since"`
	Last    time.Time               `json:"last"`
	Count   uint64                  `json:"count"`
}

func (n *Node) alarmStatus() []AlarmStatus {
	list := n.auth.alarms.Alarms()
	out := make([]AlarmStatus, 0, len(list))
	for _, al := range list {
		out = append(out, AlarmStatus{Kind: al.Kind.String(), Address: al.Addr.String(), Where: al.Where, MAC: al.MAC, MACs: al.MACs,
			Reason: al.Reason, Since: al.Since, Last: al.Last, Count: al.Count})
	}
	return out
}

// AuthStatus is a group's authentication in /status.
type AuthStatus struct {
	Mode      string  `json:"mode"`
	ActiveKey uint8   `json:"activeKey"`
	KeyIDs    []uint8 `json:"keyIds"`
	Window    string  `json:"window"`
	Signed    uint64  `json:"signed"`
	Verified  uint64  `json:"verified"`
	Unsigned  uint64  `json:"unsigned"`
}

// PeerStatus is one peer of a group in /status.
type PeerStatus struct {
	Address         string            `json:"address"`
	PlannedPriority uint8             `json:"plannedPriority"`
	PlannedInterval string            `json:"plannedInterval"`
	LastPriority    uint8             `json:"lastPriority"`
	LastInterval    string            `json:"lastInterval,omitempty"`
	LastSeen        time.Time         `json:"lastSeen,omitzero"`
	Accepted        uint64            `json:"accepted"`
	Signed          uint64            `json:"signed"`
	Unsigned        uint64            `json:"unsigned"`
	LastKeyID       uint8             `json:"lastKeyId,omitempty"`
	AuthFailures    uint64            `json:"authFailures"`
	Disagreements   map[string]uint64 `json:"disagreements,omitempty"`
	LeaveHeldUntil  time.Time         `json:"leaveHeldUntil,omitzero"`
}

func fillAuthStats(gs *GroupStatus, st vrrp.Stats) {
	if st.Auth.Enabled {
		gs.Auth = &AuthStatus{Mode: st.Auth.Mode.String(), ActiveKey: st.Auth.ActiveKey, KeyIDs: st.Auth.KeyIDs, Window: st.Auth.Window.String(),
			Signed: st.Auth.Signed, Verified: st.Auth.Verified, Unsigned: st.Auth.Unsigned}
	}
	for _, p := range st.Peers {
		ps := PeerStatus{Address: p.Addr.String(), PlannedPriority: p.PlannedPriority, PlannedInterval: p.PlannedInterval.String(),
			LastPriority: p.LastPriority, LastSeen: p.LastSeen, Accepted: p.Accepted, Signed: p.Signed, Unsigned: p.Unsigned,
			LastKeyID: p.LastKeyID, AuthFailures: p.AuthFailures, LeaveHeldUntil: p.LeaveHeldUntil}
		if p.LastInterval > 0 {
			ps.LastInterval = p.LastInterval.String()
		}
		for d := vrrp.Disagreement(0); d < vrrp.NumDisagreements; d++ {
			if c := p.Disagreements[d]; c > 0 {
				if ps.Disagreements == nil {
					ps.Disagreements = map[string]uint64{}
				}
				ps.Disagreements[d.String()] = c
			}
		}
		gs.Peers = append(gs.Peers, ps)
	}
	gs.PendingPriority = st.PendingPriority
	if st.PendingInterval != 0 {
		gs.PendingInterval = st.PendingInterval.String()
	}
	gs.PendingAt = st.PendingAt
}
