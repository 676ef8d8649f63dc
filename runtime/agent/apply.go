package agent

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
	"github.com/mwgc/mwgc/runtime/vrrpplan"
)

func groupConnKey(g *plan.Group) connKey {
	return connKey{ifname: g.Interface, ipv6: g.Family == plan.FamilyIPv6, source: g.Source}
}

// applyStats summarises what a plan change did, for the log line.
type applyStats struct {
	kept, reconfigured, added, removed int
}

// apply makes np the running plan. Everything that can fail (routers,
// sockets, link-local addresses, the management service) is built beside
// the running state first; only when all of it succeeded is it swapped in,
// and then nothing can fail. A group whose settings did not change is not
// touched; a changed one is reconfigured in place (the engine keeps its
// state and diffs its VIPs); added and removed ones are started and
// handed over.
func (a *Agent) apply(now time.Time, np *plan.Plan, initial bool) (applyStats, error) {
	var st applyStats
	keys, err := a.readKeys(np)
	if err != nil {
		return st, err
	}
	var groups []plan.Group
	if np.VRRP != nil {
		groups = np.VRRP.Groups
	}
	old := map[string]*member{}
	for _, m := range a.members {
		old[m.group.Name] = m
	}

	type slot struct {
		m      *member
		group  plan.Group
		cfg    vrrp.Config
		reconf bool
	}
	var kept, added []slot
	keep := map[*member]bool{}
	need := map[connKey]bool{}
	newConns := map[connKey]*conn{}
	rollback := func() {
		for _, c := range newConns {
			c.close()
		}
	}
	for i := range groups {
		g := groups[i]
		cfg, err := vrrpplan.Config(np, &g, keys)
		if err != nil {
			return st, err
		}
		key := groupConnKey(&g)
		need[key] = true
		if m := old[g.Name]; m != nil && m.conn.key == key && m.cfg.VRID == cfg.VRID {
			keep[m] = true
			s := slot{m: m, group: g, cfg: cfg}
			if !reflect.DeepEqual(m.cfg, cfg) {
				// Check the new settings before anything changes.
				if _, err := vrrp.NewRouter(cfg); err != nil {
					return st, fmt.Errorf("vrrp group %s: %w", g.Name, err)
				}
				s.reconf = true
			}
			kept = append(kept, s)
			continue
		}
		r, err := vrrp.NewRouter(cfg)
		if err != nil {
			return st, fmt.Errorf("vrrp group %s: %w", g.Name, err)
		}
		m := &member{group: g, cfg: cfg, router: r, held: map[netip.Prefix]bool{}, lastDropLog: map[string]time.Time{},
			sentCounter: a.met.advertsSent.WithLabelValues(g.Name),
			recvCounter: a.met.advertsReceived.WithLabelValues(g.Name)}
		m.stopBursts()
		added = append(added, slot{m: m, group: g, cfg: cfg})
	}

	// Sockets for new (interface, family, source) triples, beside the old ones.
	for _, key := range sortedKeys(need) {
		if a.conns[key] != nil {
			continue
		}
		if key.ipv6 {
			if err := a.net.EnsureLinkLocal(key.ifname, key.source); err != nil {
				rollback()
				return st, fmt.Errorf("link-local source %v on %s: %w", key.source, key.ifname, err)
			}
		}
		pc, err := a.net.Listen(key.ifname, key.ipv6, key.source)
		if err != nil {
			rollback()
			return st, fmt.Errorf("VRRP socket on %s (%s, source %v): %w", key.ifname, key.family(), key.source, err)
		}
		newConns[key] = &conn{key: key, pc: pc, unknown: a.met.unknownVRID.WithLabelValues(key.ifname, key.family())}
	}

	// The management service, also beside the old state. Update refuses
	// atomically, and nothing after it can fail.
	var newMgmt Management
	var newMgmtReg *trackingRegisterer
	switch {
	case np.Management != nil && a.mgmt == nil && a.cfg.StartManagement != nil:
		newMgmtReg = &trackingRegisterer{reg: a.reg}
		svc, err := a.cfg.StartManagement(np, a.log.With("component", "mgmt"), newMgmtReg)
		if err != nil {
			newMgmtReg.unregisterAll()
			rollback()
			return st, fmt.Errorf("management protocol: %w", err)
		}
		newMgmt = svc
	case np.Management != nil && a.mgmt != nil:
		if err := a.mgmt.Update(np); err != nil {
			rollback()
			return st, fmt.Errorf("management protocol refused the plan: %w", err)
		}
	}

	// ---- Commit. Nothing below can fail.
	// The new plan's announce settings apply to VIPs this commit adds.
	a.plan = np
	a.useKeys(keys)
	a.watchInterfaces(np)

	// Removed groups hand over first, on their still open sockets.
	for _, m := range a.members {
		if keep[m] {
			continue
		}
		st.removed++
		m.stopBursts()
		a.executeMember(m, m.router.Step(now, vrrp.Shutdown{}))
		a.met.state.DeleteLabelValues(m.group.Name)
		a.log.Info("vrrp group removed", "group", m.group.Name, "vrid", m.group.VRID, "family", m.group.Family)
	}
	// Changed groups are reconfigured in place, through the running sync group.
	for _, s := range kept {
		if s.reconf {
			st.reconfigured++
			a.execute(a.sg.Step(now, s.m.idx, vrrp.Reconfigure{Config: s.cfg}))
			s.m.cfg = s.cfg
			a.log.Info("vrrp group reconfigured", "group", s.group.Name, "vrid", s.group.VRID, "family", s.group.Family)
		} else {
			st.kept++
		}
		s.m.group = s.group
	}

	// Kept members stay in their order (the sync group is rebuilt only when
	// membership changes); added ones follow.
	members := make([]*member, 0, len(kept)+len(added))
	for _, s := range kept {
		members = append(members, s.m)
	}
	for _, s := range added {
		members = append(members, s.m)
		st.added++
	}
	for k, c := range newConns {
		a.conns[k] = c
		a.startReader(c)
	}
	for k, c := range a.conns {
		if !need[k] {
			c.close()
			delete(a.conns, k)
			continue
		}
		c.byVRID = [256]*member{}
	}
	routers := make([]*vrrp.Router, len(members))
	for i, m := range members {
		m.idx = i
		m.conn = a.conns[groupConnKey(&m.group)]
		m.conn.byVRID[m.group.VRID] = m
		routers[i] = m.router
	}
	for _, c := range a.conns {
		var acc [256]bool
		for vrid, m := range c.byVRID {
			acc[vrid] = m != nil
		}
		c.accept.Store(&acc)
	}
	if st.added > 0 || st.removed > 0 {
		if len(routers) == 0 {
			a.sg = nil
		} else {
			a.sg = vrrp.NewSyncGroup(routers...)
		}
	}
	a.members = members

	if newMgmt != nil {
		a.mgmt = newMgmt
		a.mgmtReg = newMgmtReg
		newMgmt.SetActive(a.syncActive)
	}
	if np.Management == nil && a.mgmt != nil {
		if err := a.mgmt.Close(); err != nil {
			a.log.Error("closing management protocol", "err", err)
		}
		a.mgmt = nil
		a.mgmtReg.unregisterAll()
	}
	if np.Management != nil && a.cfg.StartManagement == nil {
		a.log.Warn("plan has a management section but this agent runs no management protocol")
	}
	a.met.planInfo.Reset()
	a.met.planInfo.WithLabelValues(np.Cluster, np.Node, np.Digest).Set(1)

	// Link tracking follows the new set of interfaces: a group added on a
	// down link puts the node into Fault, removing it takes the node out.
	fault := a.links.Watch(groupInterfaces(members))
	a.updateLinkMetrics()

	// Start the new groups: all together at startup, one by one on reload;
	// not at all in Fault (leaving it starts the whole sync group).
	for _, s := range added {
		a.met.state.WithLabelValues(s.group.Name).Set(0)
		if !initial {
			// As at start-up: VIPs an earlier run left behind go first.
			for _, v := range s.group.VIPs {
				if err := a.net.RemoveVIP(s.group.Interface, v); err != nil {
					a.log.Error("cannot remove leftover VIP", "group", s.group.Name, "vip", v, "err", err)
				}
			}
			if !a.links.Fault() && fault != faultLeft {
				a.executeMember(s.m, s.m.router.Step(now, vrrp.Start{}))
			}
			a.log.Info("vrrp group added", "group", s.group.Name, "vrid", s.group.VRID, "family", s.group.Family)
		}
	}
	switch {
	case fault == faultEntered:
		a.enterFault(now)
	case fault == faultLeft:
		a.leaveFault(now)
	case initial && a.sg != nil && !a.links.Fault():
		a.execute(a.sg.Step(now, -1, vrrp.Start{}))
	}
	if a.links.Fault() {
		a.setFaultGauges()
	}
	a.followSyncState()
	return st, nil
}

// groupInterfaces lists the interfaces the members run on.
func groupInterfaces(members []*member) []string {
	var out []string
	for _, m := range members {
		out = append(out, m.group.Interface)
	}
	return out
}

// executeMember carries out actions of one router stepped on its own.
func (a *Agent) executeMember(m *member, actions []vrrp.Action) {
	for _, act := range actions {
		a.executeOne(m, act)
	}
}

func sortedKeys(set map[connKey]bool) []connKey {
	keys := make([]connKey, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y connKey) int {
		if x.ifname != y.ifname {
			if x.ifname < y.ifname {
				return -1
			}
			return 1
		}
		if x.ipv6 != y.ipv6 {
			if !x.ipv6 {
				return -1
			}
			return 1
		}
		return x.source.Compare(y.source)
	})
	return keys
}

// reload reads the plan file and applies it. An unforced reload (a file
// event) ignores content it already refused, so a bad file is reported
// once, not on every event; SIGHUP always tries again.
func (a *Agent) reload(force bool) {
	np, data, err := plan.ReadFile(a.cfg.PlanPath)
	h := sha256.Sum256(data)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !force {
			// Between an unlink and a create; the create triggers another read.
			a.log.Debug("plan file absent, waiting for it", "path", a.cfg.PlanPath)
			return
		}
		if !force && a.hasRejected && h == a.rejectedHash {
			return
		}
		a.rejectedHash, a.hasRejected = h, true
		a.met.reloads.WithLabelValues("refused").Inc()
		a.lastReload = reloadStatus{At: time.Now(), Result: "refused", Error: err.Error()}
		a.log.Error("new plan refused; the running plan stays in force",
			"path", a.cfg.PlanPath, "running_digest", a.plan.Digest, "err", err)
		return
	}
	if h == a.planHash {
		if force {
			a.met.reloads.WithLabelValues("unchanged").Inc()
			a.log.Info("plan unchanged", "digest", np.Digest)
		}
		return
	}
	st, err := a.apply(time.Now(), np, false)
	if err != nil {
		a.met.reloads.WithLabelValues("failed").Inc()
		a.lastReload = reloadStatus{At: time.Now(), Result: "failed", Error: err.Error()}
		a.log.Error("new plan could not be applied; the running plan stays in force",
			"digest", np.Digest, "running_digest", a.plan.Digest, "err", err)
		return
	}
	a.planHash = h
	a.hasRejected = false
	a.met.reloads.WithLabelValues("ok").Inc()
	a.lastReload = reloadStatus{At: time.Now(), Result: "ok"}
	a.log.Info("plan reloaded", "digest", np.Digest, "groups_kept", st.kept,
		"groups_reconfigured", st.reconfigured, "groups_added", st.added, "groups_removed", st.removed)
}
