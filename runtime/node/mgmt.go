package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/plan"
)

// mgmtPart is the management protocol (docs/management-protocol.md) of a
// node: the engine of runtime/mgmt/engine, stepped in the same loop as
// VRRP, and what the agent adds around it: the key file followed without
// a reload, the table file, the load figure, rate-limited drop logs.
type mgmtPart struct {
	eng *engine.Engine
	// plan is the plan whose management section is in force (the running
	// plan; during a commit, until update or close takes the new one).
	plan   *plan.Plan
	socket MgmtSocket
	// keys in use and their fingerprint; keyErr is the last key file error
	// logged, so a broken file is reported once.
	keys      [][]byte
	keyDigest string
	keyErr    string
	tableAt   time.Time // last table file write
	lastWarn  map[engine.DropReason]time.Time
	nextHouse time.Time // next load and key file read
	// The distribution report: the next check, and whether one is out.
	nextReport time.Time
	checking   bool
	stats      mgmtStats
}

// mgmtStats counts what the node decided about the management protocol.
type mgmtStats struct {
	ReloadsOK, ReloadsRefused uint64 // plan updates applied or refused
	KeyReloads, KeyRefused    uint64 // key file changes applied or refused
	TableWrites               uint64 // table file writes asked for
}

// housekeeping is how often the load figure is refreshed and the key file
// re-read: a rotated key is in use within a second without a reload.
const housekeeping = time.Second

// tableRefresh is how often the table file is rewritten when only
// last-seen times and loads changed.
const tableRefresh = 10 * time.Second

func mgmtSocketOf(m *plan.Management) MgmtSocket {
	return MgmtSocket{Interface: m.Interface, Port: m.Port}
}

// mgmtKeys are the keys a Prepare read for the management section.
type mgmtKeys struct {
	keys   [][]byte
	digest string
	cfg    engine.Config
}

// mgmtKeys checks the key file the Prepare read and the engine
// configuration it makes.
func (n *Node) mgmtKeys(c *candidate, results []Result) (*mgmtKeys, error) {
	m := c.plan.Management
	k := &mgmtKeys{digest: "none"}
	if m.KeyFile != "" {
		var file *File
		for i := range results {
			if rf, ok := results[i].Step.(ReadFile); ok && rf.Path == m.KeyFile {
				file = &results[i].File
			}
		}
		if file == nil {
			return nil, n.mgmtRefused(c, fmt.Errorf("mgmt: key file %s was not read", m.KeyFile))
		}
		keys, digest, err := mgmt.KeysFromFile(file.Data, file.Mode)
		if err != nil {
			return nil, n.mgmtRefused(c, fmt.Errorf("mgmt: key file %s: %w", m.KeyFile, err))
		}
		k.keys, k.digest = keys, digest
	}
	cfg, err := mgmt.EngineConfig(c.plan, k.keys)
	if err != nil {
		return nil, n.mgmtRefused(c, err)
	}
	k.cfg = cfg
	return k, nil
}

// mgmtRefused words an error of the management section and counts it
// against the running protocol.
func (n *Node) mgmtRefused(c *candidate, err error) error {
	if n.mgmt != nil && !c.initial {
		n.mgmt.stats.ReloadsRefused++
		return fmt.Errorf("management protocol refused the plan: %w", err)
	}
	return fmt.Errorf("management protocol: %w", err)
}

// commitMgmt starts, updates or stops the management protocol with the
// plan just committed.
func (n *Node) commitMgmt(now time.Time, c *candidate, keys *mgmtKeys) {
	m := c.plan.Management
	switch {
	case m == nil && n.mgmt != nil:
		n.mgmt.close(n, now)
		n.mgmt = nil
	case m != nil && n.mgmt == nil:
		n.startMgmt(now, c.plan, keys)
	case m != nil:
		n.mgmt.update(n, now, c, keys)
	}
}

func (n *Node) startMgmt(now time.Time, pl *plan.Plan, keys *mgmtKeys) {
	m := pl.Management
	// Every start is a new boot for the receivers' replay protection.
	boot := n.cfg.MgmtBootID + n.mgmtStarts
	if boot == 0 {
		boot = 1
	}
	n.mgmtStarts++
	eng, err := engine.New(keys.cfg, boot, n.cfg.MgmtRand)
	if err != nil { // mgmtKeys validated the same config
		n.log.Error("management protocol cannot start", "err", err)
		return
	}
	p := &mgmtPart{eng: eng, plan: pl, socket: mgmtSocketOf(m), keys: keys.keys, keyDigest: keys.digest,
		lastWarn: map[engine.DropReason]time.Time{}, nextHouse: now}
	if !mgmt.ReportTargetOf(pl).IsZero() {
		p.nextReport = now
	}
	n.mgmt = p
	p.writeTable(n, now)
	n.log.Info("management protocol started", "interface", m.Interface, "address", m.Address, "port", m.Port,
		"broadcast", m.Broadcast, "discovery", discoveryMode(m), "interval", m.DiscoveryInterval.D(), "deadAfter", m.DeadAfter,
		"authenticated", len(keys.keys) > 0, "members", len(m.Members), "bootId", fmt.Sprintf("%016x", boot))
	if len(keys.keys) == 0 {
		n.log.Warn("management protocol runs UNAUTHENTICATED, as the plan says: any host on the segment can impersonate a node")
	}
	p.setActive(n, now, n.syncActive())
}

// update applies a new plan in place: Active state, table rows of members
// still listed, replay state, boot id and sequence numbers stay.
func (p *mgmtPart) update(n *Node, now time.Time, c *candidate, keys *mgmtKeys) {
	m := c.plan.Management
	if c.newMgmtSocket {
		n.emit(CloseMgmt{Socket: p.socket})
		p.socket = mgmtSocketOf(m)
		n.log.Info("management socket moved", "interface", m.Interface, "port", m.Port)
	}
	if keys.digest != p.keyDigest {
		n.log.Info("management key file re-read: keys changed", "keys", keys.digest)
	}
	p.keys, p.keyDigest, p.keyErr = keys.keys, keys.digest, ""
	p.stats.ReloadsOK++
	old := p.plan.Management.TableFile
	p.plan = c.plan
	if !mgmt.ReportTargetOf(c.plan).IsZero() && p.nextReport.IsZero() {
		p.nextReport = now
	}
	p.step(n, now, engine.Reconfigure{Config: keys.cfg})
	if old != m.TableFile {
		// A reader still following the old path must not act on a table
		// that is no longer kept: remove it.
		if old != "" {
			n.emit(RemoveFile{Path: old})
		}
		p.writeTable(n, now)
	}
}

// close sends a last "leaving" answer to every director this node answers
// and closes the socket; the table file says the node is no longer Active.
func (p *mgmtPart) close(n *Node, now time.Time) {
	wasActive := p.eng.Active()
	p.step(n, now, engine.Shutdown{})
	if wasActive {
		p.writeTable(n, now)
	}
	n.emit(CloseMgmt{Socket: p.socket})
	n.log.Info("management protocol stopped")
}

// setActive starts discovery (at once) when active, and stops it otherwise.
func (p *mgmtPart) setActive(n *Node, now time.Time, active bool) {
	if p.eng.Active() == active {
		return
	}
	if active {
		n.log.Info("management discovery starts: this node is Active")
		m := p.plan.Management
		for _, mem := range m.Members {
			if mem.Address == m.Address && !mem.Director {
				n.log.Warn("this node is Active but the plan's members do not mark it a director: every node will drop its discovery (not-director)")
			}
		}
	} else {
		n.log.Info("management discovery stops: this node is no longer Active")
	}
	p.step(n, now, engine.SetActive{Active: active})
}

func (p *mgmtPart) deadline() time.Time {
	d := p.eng.Deadline()
	next := p.nextReport
	if p.checking {
		next = time.Time{} // the answer comes first
	}
	for _, t := range []time.Time{p.nextHouse, next} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

func (p *mgmtPart) tick(n *Node, now time.Time) {
	// The node ticks for its adverts (every 10 ms at the shortest); this
	// part's work is due about once a second. Once housekeeping runs,
	// deadline() covers everything below, so a tick before it does nothing.
	if !p.nextHouse.IsZero() && now.Before(p.deadline()) {
		return
	}
	if !now.Before(p.nextHouse) {
		p.nextHouse = now.Add(housekeeping)
		n.emit(ReadLoad{})
		if kf := p.plan.Management.KeyFile; kf != "" {
			n.emit(ReadFile{Path: kf})
		}
	}
	p.checkReport(n, now)
	if d := p.eng.Deadline(); !d.IsZero() && !now.Before(d) {
		p.step(n, now, engine.Tick{})
	}
}

// checkReport asks for the distribution report when it is due (a node
// that takes a share of the traffic), one check at a time.
func (p *mgmtPart) checkReport(n *Node, now time.Time) {
	m := p.plan.Management
	target := mgmt.ReportTargetOf(p.plan)
	if target.IsZero() {
		p.nextReport = time.Time{}
		return
	}
	if p.nextReport.IsZero() {
		p.nextReport = now
	}
	if now.Before(p.nextReport) || p.checking {
		return
	}
	p.nextReport = now.Add(mgmt.ReportEvery(m))
	p.checking = true
	n.emit(CheckReport{Target: target, Timeout: mgmt.ReportTimeout(m)})
}

func (n *Node) mgmtReport(now time.Time, ev ReportChecked) {
	if n.mgmt != nil {
		n.mgmt.checking = false
		n.mgmt.step(n, now, engine.SetReport{Report: ev.Report})
	}
}

func (n *Node) mgmtPacket(now time.Time, ev MgmtPacket) {
	if n.mgmt != nil && ev.Socket == n.mgmt.socket {
		n.mgmt.step(n, now, engine.Packet{Src: ev.Src, Data: ev.Data})
	}
}

func (n *Node) mgmtLoad(now time.Time, ev Load) {
	if n.mgmt != nil {
		n.mgmt.eng.Step(now, engine.SetLoad{Load: ev.PerMille})
	}
}

// fileRead takes a key file re-read: a changed key is in use at once; a
// file that became unusable is refused with one log line per distinct
// error, and the keys in use stay.
func (n *Node) fileRead(now time.Time, ev FileRead) {
	if isVRRPKeyFile(n.plan, ev.Path) {
		n.vrrpKeyRead(now, ev)
	}
	p := n.mgmt
	if p == nil || ev.Path != p.plan.Management.KeyFile {
		return
	}
	keys, digest, err := ev.File.keys(ev.Err)
	if err != nil {
		if msg := err.Error(); msg != p.keyErr {
			p.keyErr = msg
			p.stats.KeyRefused++
			n.log.Error("management key file unusable; the keys in use stay", "file", ev.Path, "err", err)
		}
		return
	}
	p.keyErr = ""
	if digest == p.keyDigest {
		return
	}
	cfg, err := mgmt.EngineConfig(p.plan, keys)
	if err != nil {
		n.log.Error("management key file unusable; the keys in use stay", "file", ev.Path, "err", err)
		return
	}
	p.keys, p.keyDigest = keys, digest
	p.stats.KeyReloads++
	n.log.Info("management key file changed; new keys in use", "file", ev.Path, "keys", digest)
	p.step(n, now, engine.Reconfigure{Config: cfg})
}

func (f File) keys(readErr error) ([][]byte, string, error) {
	if readErr != nil {
		return nil, "", readErr
	}
	return mgmt.KeysFromFile(f.Data, f.Mode)
}

// step feeds one event to the engine and turns its actions into effects.
func (p *mgmtPart) step(n *Node, now time.Time, ev engine.Event) {
	m := p.plan.Management
	tableChanged := false
	distChanged := false
	for _, a := range p.eng.Step(now, ev) {
		switch a := a.(type) {
		case engine.Send:
			n.emit(MgmtSend{Socket: p.socket, From: m.Address, To: a.To, Type: a.Type, Data: a.Data})
		case engine.NodeChanged:
			lvl := slog.LevelInfo
			if a.To == engine.StatusDown {
				lvl = slog.LevelWarn
			}
			n.log.Log(context.Background(), lvl, "node "+string(a.To), "node", a.Name, "address", a.Address, "from", a.From, "reason", a.Reason)
		case engine.DirectorHeard:
			n.log.Info("answering director", "director", a.Name, "address", a.Address, "bootId", fmt.Sprintf("%016x", a.BootID))
		case engine.DirectorLost:
			n.log.Info("director silent, no longer answering it", "director", a.Name, "address", a.Address)
		case engine.Dropped:
			// Our own broadcast looping back is normal. Floods must not
			// flood the log: one line per reason per 10 s.
			if a.Reason != engine.DropOwn && now.Sub(p.lastWarn[a.Reason]) >= dropLogEvery {
				p.lastWarn[a.Reason] = now
				n.log.Warn("management message dropped (further drops for this reason are counted, logged at most every 10s)",
					"reason", a.Reason, "src", a.Src, "err", a.Err)
			}
		case engine.TableChanged:
			distChanged = true
			// Status changes are written at once; mere last-seen and load
			// refreshes at most every tableRefresh (a thousand rows of JSON
			// every second would cost more than the protocol itself).
			if !a.Refresh || now.Sub(p.tableAt) >= tableRefresh {
				tableChanged = true
			}
		}
	}
	if tableChanged {
		p.tableAt = now
		p.writeTable(n, now)
	}
	if distChanged && n.mgmt == p {
		n.distribute(now, true)
	}
}

func (p *mgmtPart) writeTable(n *Node, now time.Time) {
	path := p.plan.Management.TableFile
	if path == "" {
		return
	}
	n.emit(WriteTable{Path: path, Table: p.status(n).Table(now)})
	p.stats.TableWrites++
}

// status is the protocol's part of /status (send errors are the executor's).
func (p *mgmtPart) status(n *Node) mgmt.Status {
	return mgmt.NewStatus(p.eng, p.plan.Cluster, p.plan.Node, p.plan.Digest, p.plan.Management, 0)
}

// discoveryMode names how discovery is sent, for logs.
func discoveryMode(m *plan.Management) string {
	if m.Discovery == "" {
		return plan.DiscoveryBroadcast
	}
	return m.Discovery
}
