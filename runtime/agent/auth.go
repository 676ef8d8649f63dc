package agent

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/impersonation"
	"github.com/mwgc/mwgc/runtime/keyfile"
	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
	"github.com/mwgc/mwgc/runtime/vrrpplan"
	"github.com/mwgc/mwgc/runtime/vrrpwatch"
)

// The agent's part of authenticated VRRP and impersonation alarms
// (docs/security.md): VRRP key files read at every plan change and
// re-read every second (a changed key is a Reconfigure: no restart, no
// transition), the engine's authentication and policy reports turned into
// metrics, rate-limited logs and alarms, and one watcher per interface
// that sees adverts forged with this node's own addresses.

// keyRereadEvery is how often the key files are read again.
const keyRereadEvery = time.Second

type authState struct {
	keys   vrrpplan.Keys
	prints map[string]string // path -> fingerprint of the key in use
	keyErr map[string]string // path -> last error logged

	mu       sync.Mutex // guards alarms: watcher goroutines and the loop use it
	alarms   *impersonation.Tracker
	watchers map[string]*vrrpwatch.Watcher // by interface, loop-owned

	lastLog map[string]time.Time // rate limit of policy log lines

	met authMetrics
}

type authMetrics struct {
	disagreements  *prometheus.CounterVec
	impersonations *prometheus.CounterVec
	keyFileErrors  prometheus.Counter
}

func newAuthMetrics(reg prometheus.Registerer) authMetrics {
	m := authMetrics{
		disagreements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mwgc_agent", Name: "policy_disagreements_total",
			Help: "Adverts that disagree with the plan's election policy, by group, peer and reason.",
		}, []string{"group", "peer", "reason"}),
		impersonations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mwgc_agent", Name: "impersonations_total",
			Help: "Evidence of adverts in a cluster member's name not sent by it: own-address, auth-failure.",
		}, []string{"kind"}),
		keyFileErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mwgc_agent", Name: "key_file_errors_total",
			Help: "VRRP key files refused at a plan change or a re-read.",
		}),
	}
	reg.MustRegister(m.disagreements, m.impersonations, m.keyFileErrors)
	for _, k := range impersonation.Kinds() {
		m.impersonations.WithLabelValues(k.String())
	}
	return m
}

func (s *authState) init(reg prometheus.Registerer) {
	s.prints, s.keyErr, s.lastLog = map[string]string{}, map[string]string{}, map[string]time.Time{}
	s.watchers = map[string]*vrrpwatch.Watcher{}
	s.alarms = impersonation.New(nil, nil)
	s.met = newAuthMetrics(reg)
}

// readKeys reads every VRRP key file of p; any error refuses the plan.
func (a *Agent) readKeys(p *plan.Plan) (vrrpplan.Keys, error) {
	keys := vrrpplan.Keys{}
	for _, path := range vrrpplan.KeyFiles(p) {
		k, err := keyfile.Read(path)
		if err != nil {
			a.auth.met.keyFileErrors.Inc()
			return nil, fmt.Errorf("VRRP %w", err)
		}
		keys[path] = k
	}
	return keys, nil
}

// useKeys records the keys a committed plan runs with.
func (a *Agent) useKeys(keys vrrpplan.Keys) {
	a.auth.keys = keys
	a.auth.prints = map[string]string{}
	for path, k := range keys {
		a.auth.prints[path] = keyfile.Fingerprint(k)
	}
}

// rereadKeys reads the key files again; groups whose keys changed are
// reconfigured in place. A file that became unusable is logged once per
// distinct error and the keys in use stay.
func (a *Agent) rereadKeys(now time.Time) {
	if a.plan == nil || len(a.auth.keys) == 0 {
		return
	}
	var changed []string
	next := vrrpplan.Keys{}
	for path, old := range a.auth.keys {
		k, err := keyfile.Read(path)
		if err != nil {
			if msg := err.Error(); msg != a.auth.keyErr[path] {
				a.auth.keyErr[path] = msg
				a.auth.met.keyFileErrors.Inc()
				a.log.Error("VRRP key file unusable; the key in use stays", "file", path, "err", err)
			}
			next[path] = old
			continue
		}
		delete(a.auth.keyErr, path)
		next[path] = k
		if fp := keyfile.Fingerprint(k); fp != a.auth.prints[path] {
			changed = append(changed, path)
		}
	}
	if len(changed) == 0 {
		return
	}
	slices.Sort(changed)
	for _, m := range a.members {
		cfg, err := vrrpplan.Config(a.plan, &m.group, next)
		if err != nil || m.router.CheckReconfigure(cfg) != nil {
			a.log.Error("VRRP key file change refused; the keys in use stay", "group", m.group.Name, "err", err)
			return
		}
	}
	a.useKeys(next)
	for _, m := range a.members {
		cfg, _ := vrrpplan.Config(a.plan, &m.group, next)
		a.execute(a.sg.Step(now, m.idx, vrrp.Reconfigure{Config: cfg}))
		m.cfg = cfg
	}
	fps := make([]string, len(changed))
	for i, p := range changed {
		fps[i] = p + "=" + a.auth.prints[p]
	}
	a.log.Info("VRRP key files changed; new keys in use", "files", fps)
}

// authAction handles the engine's authentication and policy reports.
func (a *Agent) authAction(m *member, act vrrp.Action) {
	now := time.Now()
	switch act := act.(type) {
	case vrrp.Dropped:
		if !act.Reason.IsAuthFailure() {
			return
		}
		a.auth.mu.Lock()
		ev := a.auth.alarms.AuthFailure(now, m.group.Name, act.Src, act.Reason.String())
		a.auth.mu.Unlock()
		a.auth.met.impersonations.WithLabelValues(impersonation.AuthFailure.String()).Inc()
		a.logAlarm(ev)
	case vrrp.Disagreed:
		reason := act.Reason.String()
		a.auth.met.disagreements.WithLabelValues(m.group.Name, act.Peer.String(), reason).Inc()
		key := m.group.Name + "|" + act.Peer.String() + "|" + reason
		if last, ok := a.auth.lastLog[key]; !ok || now.Sub(last) > 10*time.Second {
			a.auth.lastLog[key] = now
			a.log.Warn("advert disagrees with the plan", "group", m.group.Name, "peer", act.Peer, "reason", reason, "err", act.Err)
		}
	}
}

func (a *Agent) logAlarm(ev *impersonation.Event) {
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
		a.log.Info("impersonation alarm cleared", args...)
	case ev.Raised:
		a.log.Error("impersonation alarm: someone sends VRRP in a cluster member's name", args...)
	default:
		a.log.Warn("impersonation alarm continues", args...)
	}
}

// watchInterfaces keeps one watcher per interface with a VRRP group and
// tells the alarm tracker the node's own addresses and its peers'.
func (a *Agent) watchInterfaces(p *plan.Plan) {
	var own, peers []netip.Addr
	want := map[string]bool{}
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
			want[g.Interface] = true
			for _, peer := range g.Peers {
				peers = append(peers, peer.Address)
			}
		}
	}
	a.auth.mu.Lock()
	a.auth.alarms.SetAddresses(own, peers)
	a.auth.mu.Unlock()
	for ifname, w := range a.auth.watchers {
		if !want[ifname] {
			w.Close()
			delete(a.auth.watchers, ifname)
		}
	}
	for ifname := range want {
		if a.auth.watchers[ifname] != nil {
			continue
		}
		w, err := vrrpwatch.Listen(ifname)
		if err != nil {
			a.log.Warn("cannot watch for impersonation; alarms for adverts with our own address are off", "interface", ifname, "err", err)
			continue
		}
		a.auth.watchers[ifname] = w
		a.startWatcher(ifname, w)
	}
}

// startWatcher reads one watcher until it is closed.
func (a *Agent) startWatcher(ifname string, w *vrrpwatch.Watcher) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		buf := make([]byte, 128)
		var f vrrpwatch.Frame
		for {
			if err := w.Read(buf, &f); err != nil {
				return // closed
			}
			now := time.Now()
			a.auth.mu.Lock()
			ev := a.auth.alarms.Frame(now, ifname, f.Src, f.MAC)
			own := a.auth.alarms.IsOwn(f.Src)
			a.auth.mu.Unlock()
			if own {
				a.auth.met.impersonations.WithLabelValues(impersonation.OwnAddress.String()).Inc()
			}
			a.logAlarm(ev)
		}
	}()
}

// expireAlarms clears quiet alarms (housekeeping).
func (a *Agent) expireAlarms(now time.Time) {
	a.auth.mu.Lock()
	evs := a.auth.alarms.Expire(now)
	a.auth.mu.Unlock()
	for i := range evs {
		a.logAlarm(&evs[i])
	}
}

func (a *Agent) closeWatchers() {
	for ifname, w := range a.auth.watchers {
		w.Close()
		delete(a.auth.watchers, ifname)
	}
}

// AlarmStatus is one impersonation alarm in /status.
type AlarmStatus struct {
	Kind    string    `json:"kind"`
	Address string    `json:"address"`
	Where   string    `json:"where"`
	MAC     string    `json:"mac,omitempty"`
	MACSeen time.Time `json:"macSeen,omitzero"`
	// MACs: every Ethernet source seen with Address lately, latest first.
	MACs   []impersonation.MACSeen `json:"macs,omitempty"`
	Reason string                  `json:"reason,omitempty"`
	Since  time.Time               `json:"since"`
	Last   time.Time               `json:"last"`
	Count  uint64                  `json:"count"`
}

func (a *Agent) alarmStatus() []AlarmStatus {
	a.auth.mu.Lock()
	list := a.auth.alarms.Alarms()
	a.auth.mu.Unlock()
	out := make([]AlarmStatus, 0, len(list))
	for _, al := range list {
		out = append(out, AlarmStatus{Kind: al.Kind.String(), Address: al.Addr.String(), Where: al.Where, MAC: al.MAC, MACSeen: al.MACSeen, MACs: al.MACs,
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
			if n := p.Disagreements[d]; n > 0 {
				if ps.Disagreements == nil {
					ps.Disagreements = map[string]uint64{}
				}
				ps.Disagreements[d.String()] = n
			}
		}
		gs.Peers = append(gs.Peers, ps)
	}
	if st.PendingPriority != 0 {
		gs.PendingPriority = st.PendingPriority
	}
	if st.PendingInterval != 0 {
		gs.PendingInterval = st.PendingInterval.String()
	}
	gs.PendingAt = st.PendingAt
}
