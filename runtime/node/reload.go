package node

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/mwgc/mwgc/runtime/nft"
	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
	"github.com/mwgc/mwgc/runtime/vrrpplan"
)

// candidate is a plan built beside the running one, waiting for the
// executor's Prepared before it is committed.
type candidate struct {
	txn     uint64
	plan    *plan.Plan
	hash    [32]byte
	initial bool
	kept    []keptGroup
	added   []*member
	removed []*member
	// newMgmtSocket: the plan's management socket differs from the one
	// open (or none is open).
	newMgmtSocket bool
	// vrrpKeys are the keys the Prepare read (auth.go).
	vrrpKeys vrrpplan.Keys
}

type keptGroup struct {
	m      *member
	group  plan.Group
	cfg    vrrp.Config
	reconf bool // engine settings changed: Reconfigure in place
}

// planFile takes a plan file the executor read. An unforced read (a file
// event) ignores content it already refused, so a bad file is reported
// once, not on every event; SIGHUP always tries again.
func (n *Node) planFile(now time.Time, ev PlanFile) {
	h := sha256.Sum256(ev.Data)
	if ev.Err != nil {
		if errors.Is(ev.Err, fs.ErrNotExist) && !ev.Forced && n.plan != nil {
			// Between an unlink and a create; the create brings another read.
			n.log.Debug("plan file absent, waiting for it")
			return
		}
		n.refuse(now, h, ev.Forced, ev.Err)
		return
	}
	if n.plan != nil && h == n.planHash {
		// The running content is back (a bad file restored, or fixed and
		// SIGHUPed): the last refusal no longer describes the file.
		stale := n.last.Result == ResultRefused || n.last.Result == ResultFailed
		if ev.Forced || stale {
			n.last = ReloadStatus{At: now, Result: ResultUnchanged}
			n.emit(n.result(ResultUnchanged, nil))
			n.log.Info("plan unchanged", "digest", n.plan.Digest)
		}
		n.rejected = nil
		return
	}
	if !ev.Forced && n.rejected != nil && *n.rejected == h {
		return
	}
	p, err := plan.Decode(ev.Data)
	if err != nil {
		n.refuse(now, h, ev.Forced, err)
		return
	}
	c, err := n.build(p, h)
	if err == nil {
		err = n.missingInterface(p)
	}
	if err != nil {
		n.fail(now, c, err)
		return
	}
	steps := n.setupSteps(c)
	if len(steps) == 0 {
		n.finish(now, c, nil)
		return
	}
	n.txn++
	c.txn = n.txn
	n.pending = c
	n.emit(Prepare{Txn: c.txn, Steps: steps})
}

func (n *Node) refuse(now time.Time, h [32]byte, forced bool, err error) {
	if !forced && n.rejected != nil && *n.rejected == h {
		return
	}
	n.rejected = &h
	n.last = ReloadStatus{At: now, Result: ResultRefused, Error: err.Error()}
	r := n.result(ResultRefused, err)
	n.emit(r)
	if r.Initial {
		n.log.Error("plan refused", "err", err)
		return
	}
	n.log.Error("new plan refused; the running plan stays in force", "running_digest", n.plan.Digest, "err", err)
}

func (n *Node) fail(now time.Time, c *candidate, err error) {
	n.last = ReloadStatus{At: now, Result: ResultFailed, Error: err.Error()}
	r := n.result(ResultFailed, err)
	n.emit(r)
	if r.Initial {
		n.log.Error("plan could not be started", "digest", c.plan.Digest, "err", err)
		return
	}
	n.log.Error("new plan could not be applied; the running plan stays in force",
		"digest", c.plan.Digest, "running_digest", n.plan.Digest, "err", err)
}

// result reports a plan file's outcome, naming the plan in force after it.
func (n *Node) result(result string, err error) PlanResult {
	r := PlanResult{Result: result, Err: err, Initial: n.plan == nil}
	if n.plan != nil {
		r.Cluster, r.Node, r.Digest = n.plan.Cluster, n.plan.Node, n.plan.Digest
	}
	return r
}

// build checks the new plan against the running one: which groups are
// kept as they are, reconfigured in place, added or removed. Nothing
// changes yet.
func (n *Node) build(np *plan.Plan, h [32]byte) (*candidate, error) {
	c := &candidate{plan: np, hash: h, initial: n.plan == nil}
	var groups []plan.Group
	if np.VRRP != nil {
		groups = np.VRRP.Groups
	}
	old := map[string]*member{}
	for _, m := range n.members {
		old[m.group.Name] = m
	}
	keep := map[*member]bool{}
	keys := n.provisionalKeys(np)
	for _, g := range groups {
		cfg := groupConfig(np, &g, keys)
		if m := old[g.Name]; m != nil && m.socket() == socketOf(&g) && m.group.VRID == g.VRID && m.group.VMACInterface == g.VMACInterface {
			k := keptGroup{m: m, group: g, cfg: cfg}
			if !configEqual(groupConfig(n.plan, &m.group, n.auth.keys), cfg) {
				if err := m.router.CheckReconfigure(cfg); err != nil {
					return c, fmt.Errorf("vrrp group %s: %w", g.Name, err)
				}
				k.reconf = true
			}
			keep[m] = true
			c.kept = append(c.kept, k)
			continue
		}
		r, err := vrrp.NewRouter(cfg)
		if err != nil {
			return c, fmt.Errorf("vrrp group %s: %w", g.Name, err)
		}
		c.added = append(c.added, newMember(g, r))
	}
	for _, m := range n.members {
		if !keep[m] {
			c.removed = append(c.removed, m)
		}
	}
	if np.Management != nil {
		c.newMgmtSocket = n.mgmt == nil || n.mgmt.socket != mgmtSocketOf(np.Management)
	}
	return c, nil
}

// missingInterface names an interface the plan runs on that the host does
// not have (when the link listing says so): nothing of the plan could run
// there, and "Link not found" from the first netlink call says less.
func (n *Node) missingInterface(p *plan.Plan) error {
	var uses [][2]string // interface, what runs on it
	if p.VRRP != nil {
		for _, g := range p.VRRP.Groups {
			uses = append(uses, [2]string{g.Interface, "VRRP group " + g.Name})
		}
	}
	if p.Management != nil {
		uses = append(uses, [2]string{p.Management.Interface, "management"})
	}
	for _, u := range uses {
		if !n.links.Exists(u[0]) {
			return fmt.Errorf("interface %s (%s) does not exist on this host", u[0], u[1])
		}
	}
	return nil
}

// newMembers is the member list after the commit: kept members in their
// order, added ones after them.
func (c *candidate) newMembers() []*member {
	out := make([]*member, 0, len(c.kept)+len(c.added))
	for _, k := range c.kept {
		out = append(out, k.m)
	}
	return append(out, c.added...)
}

// setupSteps lists what must work before c is committed: for the first
// plan, removing the VIPs an earlier run left behind (they would answer
// for the cluster while this node is Backup); the nftables rules when they
// change (always for the first plan: a crashed run's go); IPv6 link-local
// sources and sockets not open yet; the management socket and key file.
func (n *Node) setupSteps(c *candidate) []Effect {
	var steps []Effect
	// Macvlans of virtual MACs first: their sockets need them. (VIPs an
	// earlier run left behind stay for now: see failover.go.)
	for _, m := range c.added {
		if g := &m.group; g.VMACInterface != "" {
			steps = append(steps, EnsureVMAC{Group: g.Name, Name: g.VMACInterface, Parent: g.Interface,
				VRID: g.VRID, IPv6: g.Family == plan.FamilyIPv6})
		}
	}
	if rules := rulesOf(c.plan); c.initial || !rules.Equal(rulesOf(n.plan)) {
		steps = append(steps, Rules{State: rules})
	}
	open := socketsOf(n.members)
	for _, s := range socketsOf(c.newMembers()) {
		if slices.Contains(open, s) {
			continue
		}
		if s.keepsLinkLocal() {
			steps = append(steps, EnsureLinkLocal{Interface: s.Interface, Addr: s.Source})
		}
		steps = append(steps, OpenVRRP{Socket: s})
	}
	if m := c.plan.Management; m != nil {
		if c.newMgmtSocket {
			steps = append(steps, OpenMgmt{Socket: mgmtSocketOf(m)})
		}
		if m.KeyFile != "" {
			steps = append(steps, ReadFile{Path: m.KeyFile})
		}
		if m.TableFile != "" && (n.plan == nil || n.plan.Management == nil || n.plan.Management.TableFile != m.TableFile) {
			steps = append(steps, CheckWritable{Path: m.TableFile})
		}
	}
	for _, f := range vrrpplan.KeyFiles(c.plan) {
		steps = append(steps, ReadFile{Path: f})
	}
	return steps
}

// prepared takes the outcome of a Prepare: the plan is committed only if
// every step worked; otherwise what was opened is closed again and the
// running plan stays.
func (n *Node) prepared(now time.Time, ev Prepared) {
	c := n.pending
	if c == nil || ev.Txn != c.txn {
		n.undo(ev.Results) // superseded: nothing of it is used
		return
	}
	n.pending = nil
	if err := n.stepError(c, ev.Results); err != nil {
		n.undo(ev.Results)
		n.fail(now, c, err)
		return
	}
	n.finish(now, c, ev.Results)
}

// finish checks what the setup read (the key file) and commits c, or
// undoes the setup.
func (n *Node) finish(now time.Time, c *candidate, results []Result) {
	vk, err := n.readKeys(c, results)
	if err == nil {
		err = n.withKeys(c, vk)
	}
	if err != nil {
		n.undo(results)
		n.fail(now, c, err)
		return
	}
	c.vrrpKeys = vk
	var keys *mgmtKeys
	if c.plan.Management != nil {
		var err error
		if keys, err = n.mgmtKeys(c, results); err != nil {
			n.undo(results)
			n.fail(now, c, err)
			return
		}
	}
	n.commit(now, c, keys)
}

// stepError explains the first failed step, in the words an operator
// needs.
func (n *Node) stepError(c *candidate, results []Result) error {
	for _, r := range results {
		if r.Err == nil {
			continue
		}
		switch s := r.Step.(type) {
		case OpenVRRP:
			return fmt.Errorf("VRRP socket on %s (%s, source %v): %w", s.Socket.Interface, s.Socket.Family(), s.Socket.Source, r.Err)
		case EnsureLinkLocal:
			return fmt.Errorf("link-local source %v on %s: %w", s.Addr, s.Interface, r.Err)
		case RemoveVIP:
			return fmt.Errorf("removing leftover VIP %v from %s: %w", s.VIP, s.Interface, r.Err)
		case EnsureVMAC:
			return fmt.Errorf("virtual MAC interface %s on %s for vrrp group %s: %w", s.Name, s.Parent, s.Group, r.Err)
		case ReadFile:
			if isVRRPKeyFile(c.plan, s.Path) {
				n.emit(KeyFileRefused{Path: s.Path})
				return fmt.Errorf("VRRP key file %s: %w", s.Path, r.Err)
			}
			return n.mgmtRefused(c, r.Err)
		case OpenMgmt:
			return n.mgmtRefused(c, r.Err)
		case Rules:
			return fmt.Errorf("nftables (accept mode): %w", r.Err)
		case CheckWritable:
			return fmt.Errorf("management table file %s: %w", s.Path, r.Err)
		}
		return r.Err
	}
	return nil
}

// undo closes what the steps of an abandoned Prepare opened.
func (n *Node) undo(results []Result) {
	for _, r := range results {
		if r.Err != nil {
			continue
		}
		switch s := r.Step.(type) {
		case OpenVRRP:
			n.emit(CloseVRRP{Socket: s.Socket})
		case OpenMgmt:
			n.emit(CloseMgmt{Socket: s.Socket})
		case Rules:
			n.emit(Rules{State: rulesOf(n.plan)}) // the running plan's again
		case EnsureVMAC:
			if !slices.ContainsFunc(n.members, func(m *member) bool { return m.group.VMACInterface == s.Name }) {
				n.emit(RemoveVMAC{Group: s.Group, Name: s.Name})
			}
		}
	}
}

// rulesOf is the nftables state plan p asks for: the VIPs of groups whose
// Active must not accept packets for them (RFC 9568 §6.4.3: not the owner,
// Accept_Mode false). They are filtered all the time: while the group is
// Backup they are not local addresses and nothing reaches the filter, and
// becoming Active needs no change of the ruleset.
func rulesOf(p *plan.Plan) nft.State {
	var s nft.State
	if p == nil || p.VRRP == nil || p.VRRP.Priority == 255 {
		return s
	}
	for _, g := range p.VRRP.Groups {
		if g.AcceptMode {
			continue
		}
		for _, v := range g.VIPs {
			s.DropVIPs = append(s.DropVIPs, v.Addr())
		}
	}
	return s
}

// commit makes c the running plan. Nothing here can fail.
func (n *Node) commit(now time.Time, c *candidate, keys *mgmtKeys) {
	oldSockets := socketsOf(n.members)
	n.plan, n.planHash, n.rejected = c.plan, c.hash, nil
	n.commitAuth(now, c.vrrpKeys)
	n.commitClaims()

	// Removed groups hand over first, on their still open sockets.
	for _, m := range c.removed {
		m.bursts = nil
		n.executeMember(now, m, m.router.Step(now, vrrp.Shutdown{}))
		n.clearLeftover(m)
		if m.group.VMACInterface != "" {
			n.emit(RemoveVMAC{Group: m.group.Name, Name: m.group.VMACInterface})
		}
		n.emit(GroupState{Group: m.group.Name, Removed: true})
		n.log.Info("vrrp group removed", "group", m.group.Name, "vrid", m.group.VRID, "family", m.group.Family)
	}
	// Changed groups are reconfigured in place, through the running sync group.
	for _, k := range c.kept {
		if k.reconf {
			n.execute(now, n.sg.Step(now, slices.Index(n.members, k.m), vrrp.Reconfigure{Config: k.cfg}))
			n.log.Info("vrrp group reconfigured", "group", k.group.Name, "vrid", k.group.VRID, "family", k.group.Family)
		}
		k.m.group = k.group
	}
	n.members = c.newMembers()
	if c.initial {
		for _, m := range n.members {
			m.leftover = true // until a peer is seen serving the VIPs (failover.go)
		}
	}
	n.sg = nil
	if len(n.members) > 0 {
		routers := make([]*vrrp.Router, len(n.members))
		for i, m := range n.members {
			routers[i] = m.router
		}
		n.sg = vrrp.NewSyncGroup(routers...)
	}
	open := socketsOf(n.members)
	for _, s := range oldSockets {
		if !slices.Contains(open, s) {
			n.emit(CloseVRRP{Socket: s})
		}
	}
	n.commitMgmt(now, c, keys)

	// Link tracking follows the new set of interfaces: a group added on a
	// down link puts the node into Fault, removing it takes the node out.
	var ifaces []string
	for _, m := range n.members {
		ifaces = append(ifaces, m.group.Interface)
	}
	change := n.links.Watch(ifaces)
	n.emit(InterfacesChanged{Up: n.links.states()})
	n.startAdded(now, c, change)
	if change != faultUnchanged {
		n.applyFault(now, change) // reports the states and follows the sync group
	} else {
		if c.initial && n.sg != nil && !n.links.Fault() {
			n.execute(now, n.sg.Step(now, -1, vrrp.Start{}))
		}
		if n.links.Fault() {
			for _, m := range c.added {
				n.emit(GroupState{Group: m.group.Name, State: StateFault})
			}
		}
		n.followSyncState(now)
	}
	n.distribute(now, true) // the plan's distribution may have changed
	n.reportCommit(now, c)
}

// startAdded starts the groups the plan added: on a reload each on its own
// (joining as Active when the node is Active), at start-up all together
// (by commit); not at all in Fault (leaving it starts the whole group).
func (n *Node) startAdded(now time.Time, c *candidate, change faultChange) {
	for _, m := range c.added {
		g := &m.group
		n.emit(GroupState{Group: g.Name, State: vrrp.StateInitialize.String()})
		if c.initial {
			continue
		}
		// VIPs an earlier run left behind go first.
		for _, v := range g.VIPs {
			n.emit(RemoveVIP{Group: g.Name, Interface: m.vipInterface(), VIP: v})
		}
		n.setVMAC(m, false)
		if !n.links.Fault() && change != faultLeft {
			n.execute(now, n.sg.Step(now, slices.Index(n.members, m), vrrp.Start{}))
		}
		n.log.Info("vrrp group added", "group", g.Name, "vrid", g.VRID, "family", g.Family)
	}
}

func (n *Node) reportCommit(now time.Time, c *candidate) {
	n.last = ReloadStatus{At: now, Result: ResultOK}
	r := PlanResult{Result: ResultOK, Initial: c.initial, Cluster: c.plan.Cluster, Node: c.plan.Node, Digest: c.plan.Digest}
	n.emit(r)
	if c.initial {
		n.last = ReloadStatus{}
		n.log.Info("plan started", "cluster", c.plan.Cluster, "node", c.plan.Node, "digest", c.plan.Digest,
			"groups", len(n.members), "management", c.plan.Management != nil)
		return
	}
	kept, reconf := 0, 0
	for _, k := range c.kept {
		if k.reconf {
			reconf++
		} else {
			kept++
		}
	}
	n.log.Info("plan reloaded", "digest", c.plan.Digest, "groups_kept", kept,
		"groups_reconfigured", reconf, "groups_added", len(c.added), "groups_removed", len(c.removed))
}
