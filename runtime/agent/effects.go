package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/mwgc/mwgc/runtime/forward"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/nft"
	"github.com/mwgc/mwgc/runtime/node"
)

// carryOut does what the node asked, in order. Effects that produce an
// event (a Prepare's outcome, a file read, the load, a failed VIP) queue
// it for step.
func (a *Agent) carryOut(effects []node.Effect) {
	for _, e := range effects {
		switch e := e.(type) {
		case node.Prepare:
			a.prepare(e)
		case node.SendAdvert:
			a.sendAdvert(e)
		case node.AddVIP:
			if err := a.net.AddVIP(e.Interface, e.VIP); err != nil {
				a.met.vipErrors.WithLabelValues(e.Group, "add").Inc()
				a.log.Error("cannot add VIP", "group", e.Group, "vip", e.VIP, "interface", e.Interface, "err", err)
				a.pending = append(a.pending, node.Failed{Effect: e, Err: err})
			}
		case node.RemoveVIP:
			if err := a.removeVIP(e); err != nil {
				a.met.vipErrors.WithLabelValues(e.Group, "remove").Inc()
				a.log.Error("cannot remove VIP", "group", e.Group, "vip", e.VIP, "interface", e.Interface, "err", err)
			}
		case node.Announce:
			a.announce(e)
		case node.EnsureLinkLocal:
			if err := a.net.EnsureLinkLocal(e.Interface, e.Addr); err != nil {
				a.log.Error("cannot restore the IPv6 link-local source", "interface", e.Interface, "source", e.Addr, "err", err)
			}
		case node.SetVMAC:
			if err := a.net.SetVMAC(e.Name, e.Active, e.LinkLocal); err != nil {
				a.met.vipErrors.WithLabelValues(e.Group, map[bool]string{true: "vmac-up", false: "vmac-down"}[e.Active]).Inc()
				a.log.Error("cannot set the virtual MAC interface", "group", e.Group, "interface", e.Name, "up", e.Active, "err", err)
			}
		case node.RemoveVMAC:
			a.dropAnnouncer(e.Name)
			delete(a.vmacs, e.Name)
			if err := a.net.RemoveVMAC(e.Name); err != nil {
				a.log.Error("cannot remove the virtual MAC interface", "group", e.Group, "interface", e.Name, "err", err)
			}
		case node.CloseVRRP:
			if s := a.vrrp[e.Socket]; s != nil {
				a.closeVRRP(e.Socket, s)
			}
		case node.CloseMgmt:
			if s := a.mgmt[e.Socket]; s != nil {
				a.closeMgmt(e.Socket, s)
			}
		case node.MgmtSend:
			a.mgmtSend(e)
		case node.WriteTable:
			a.table.Submit(e.Path, e.Table)
		case node.RemoveFile:
			if err := os.Remove(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				a.log.Warn("removing a file the agent no longer keeps", "file", e.Path, "err", err)
			}
		case node.ReadFile:
			file, err := readFile(e.Path)
			a.pending = append(a.pending, node.FileRead{Path: e.Path, File: file, Err: err})
		case node.CheckReport:
			// It may wait for a connection: off the loop, answered by a post.
			go func() {
				r := mgmt.CheckReport(e.Target, e.Timeout)
				a.post(func() { a.step(node.ReportChecked{Report: r}) })
			}()
		case node.ReadLoad:
			if l, ok := mgmt.ReadLoad(); ok {
				a.pending = append(a.pending, node.Load{PerMille: l})
			}
		case node.Rules:
			if err := a.applyRules(e.State); err != nil {
				a.log.Error("cannot set the nftables rules (accept mode)", "err", err)
			}
		case node.Forwarding:
			a.pending = append(a.pending, a.applyForwarding(e.State))
		case node.ReadNeighbors:
			ev := node.Neighbors{Interface: e.Interface, Err: errNoForwarder}
			if a.fwd != nil {
				ev.MACs, ev.Err = a.fwd.Neighbors(e.Interface)
			}
			a.pending = append(a.pending, ev)
		case node.OpenVRRP, node.OpenMgmt, node.CheckWritable:
			a.log.Error("agent: a setup step outside a Prepare", "effect", fmt.Sprintf("%T", e))
		case node.PlanResult:
			a.planResult(e)
		case node.Notify:
			a.submitNotify(e)
		default:
			if !a.authReport(e) {
				a.report(e)
			}
		}
	}
}

// removeVIP removes a VIP and then ends the TCP connections to it: their
// clients now reach the VIP's new holder, and a socket left open here
// could match a later connection of theirs with the same ports, which
// this node would stall (answering with out-of-window ACKs instead of a
// reset) when it holds the VIP again (runtime/conns). Failing to end them
// is logged; the VIP is gone either way.
func (a *Agent) removeVIP(e node.RemoveVIP) error {
	if err := a.net.RemoveVIP(e.Interface, e.VIP); err != nil {
		return err
	}
	n, err := a.net.EndConnections(e.VIP.Addr())
	if n > 0 {
		a.met.connectionsEnded.WithLabelValues(e.Group).Add(float64(n))
		a.log.Info("connections to a released VIP ended", "group", e.Group, "vip", e.VIP.Addr(), "connections", n)
	}
	if err != nil {
		a.log.Warn("cannot end the connections to a released VIP", "group", e.Group, "vip", e.VIP.Addr(), "err", err)
	}
	return nil
}

// prepare carries out the setup steps of a plan in order, stops at the
// first failure, and answers the node.
func (a *Agent) prepare(p node.Prepare) {
	results := make([]node.Result, 0, len(p.Steps))
	for _, step := range p.Steps {
		r := node.Result{Step: step}
		switch s := step.(type) {
		case node.RemoveVIP:
			r.Err = a.removeVIP(s)
		case node.EnsureLinkLocal:
			r.Err = a.net.EnsureLinkLocal(s.Interface, s.Addr)
		case node.EnsureVMAC:
			r.Err = a.net.EnsureVMAC(s.Name, s.Parent, uint8(s.VRID), s.IPv6)
			if r.Err == nil {
				if a.vmacs == nil {
					a.vmacs = map[string]vmacSpec{}
				}
				a.vmacs[s.Name] = vmacSpec{parent: s.Parent, vrid: uint8(s.VRID), ipv6: s.IPv6}
			}
		case node.OpenVRRP:
			r.Err = a.openVRRP(s.Socket)
		case node.OpenMgmt:
			r.Err = a.openMgmt(s.Socket)
		case node.ReadFile:
			r.File, r.Err = readFile(s.Path)
		case node.CheckWritable:
			r.Err = checkWritable(s.Path)
		case node.Rules:
			r.Err = a.applyRules(s.State)
		default:
			r.Err = fmt.Errorf("agent: unknown setup step %T", step)
		}
		results = append(results, r)
		if r.Err != nil {
			break
		}
	}
	a.pending = append(a.pending, node.Prepared{Txn: p.Txn, Results: results})
}

// applyForwarding programs traffic distribution (runtime/forward) with the
// outgoing interface's index and MAC filled in, and says how it went.
func (a *Agent) applyForwarding(s forward.State) node.ForwardingApplied {
	if a.fwd == nil {
		return node.ForwardingApplied{Err: errNoForwarder}
	}
	a.forwarding = s
	// A crashed run's tables (mwgc-* of every part) go before ours are
	// built, never after.
	if !a.rulesCleaned {
		if err := a.net.CleanRules(); err != nil {
			a.log.Warn("cannot remove a crashed run's nftables tables", "err", err)
		}
		a.rulesCleaned = true
	}
	if d := s.Director; d != nil && d.L2 {
		idx, mac, err := a.fwd.Link(d.OutInterface)
		if err != nil {
			return node.ForwardingApplied{Err: err}
		}
		dir := *d
		dir.OutIfindex, dir.OutMAC = idx, mac
		s.Director = &dir
	}
	start := time.Now()
	err := a.fwd.Apply(s)
	took := time.Since(start)
	a.distMetrics.Applied(err, took)
	if err != nil {
		a.log.Error("cannot program traffic distribution; the kernel keeps the previous state", "err", err)
	}
	return node.ForwardingApplied{At: time.Now(), Took: took, Err: err}
}

var errNoForwarder = errors.New("agent: this network has no traffic distribution driver")

// applyRules sets mwgc's nftables tables; the first time in a run it
// removes a crashed run's leftovers first.
func (a *Agent) applyRules(s nft.State) error {
	if !a.rulesCleaned {
		if err := a.net.CleanRules(); err != nil {
			return err
		}
		a.rulesCleaned = true
	}
	return a.net.ApplyRules(s)
}

// checkWritable checks that a file can be created in path's directory (the
// table file is written beside and renamed): the directory exists and
// this process may write there, which a read-only mount (systemd's
// ProtectSystem) denies too.
func checkWritable(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("directory %s is not writable: %w", dir, err)
	}
	return nil
}

// readFile reads a key file: at most 64 KiB of a regular file, with its mode.
func readFile(path string) (node.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return node.File{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return node.File{}, err
	}
	if !st.Mode().IsRegular() {
		return node.File{Mode: st.Mode()}, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, mgmt.MaxKeyFileSize))
	return node.File{Data: data, Mode: st.Mode()}, err
}

func (a *Agent) sendAdvert(e node.SendAdvert) {
	g, s := a.advertRoute(e)
	if e.To.IsValid() {
		if a.sendUnicast(e, s) {
			g.sent.Inc() // one per copy: a unicast group writes one per peer
		}
		return
	}
	var err error
	if s == nil {
		err = errors.New("socket not open")
	} else {
		err = s.pc.WritePacket(e.Data)
	}
	if err != nil {
		a.met.sendErrors.WithLabelValues(e.Group).Inc()
		if !g.sendFailing {
			g.sendFailing = true
			a.log.Warn("cannot send advert", "group", e.Group, "interface", e.Socket.Interface, "err", err)
		}
		return
	}
	if g.sendFailing {
		g.sendFailing = false
		a.log.Info("sending adverts again", "group", e.Group, "interface", e.Socket.Interface)
	}
	g.sent.Inc()
}

func (a *Agent) announce(e node.Announce) {
	an := a.announcers[e.Interface]
	if an == nil {
		var err error
		if an, err = a.net.OpenAnnouncer(e.Interface); err != nil {
			a.log.Error("cannot announce VIPs", "group", e.Group, "interface", e.Interface, "err", err)
			return
		}
		a.announcers[e.Interface] = an
	}
	if err := an.Announce(e.VIP); err != nil {
		a.log.Warn("announcement failed", "group", e.Group, "vip", e.VIP, "err", err)
		return
	}
	if e.Group != "" { // not an answer to a claim of an own address
		a.group(e.Group).announced.Inc()
	}
}

func (a *Agent) mgmtSend(e node.MgmtSend) {
	s := a.mgmt[e.Socket]
	var err error
	if s == nil {
		err = mgmt.ErrClosed
	} else {
		err = s.mc.Send(e.From, e.To, e.Data)
	}
	if err != nil {
		a.mgmtErrors++
		a.log.Warn("management send failed", "type", e.Type, "to", e.To, "err", err)
	}
}

// planResult counts a plan file's outcome; the first plan failing ends Run.
func (a *Agent) planResult(r node.PlanResult) {
	if r.Initial {
		if r.Result != node.ResultOK {
			a.startErr = r.Err
			a.stopped = true
		}
	} else {
		a.met.reloads.WithLabelValues(r.Result).Inc()
	}
	if r.Result == node.ResultOK {
		a.met.planInfo.Reset()
		a.met.planInfo.WithLabelValues(r.Cluster, r.Node, r.Digest).Set(1)
	}
}

// groupState is what the executor keeps per group: metric handles looked
// up once (at 10 ms adverts a label lookup per advert is measurable) and
// whether sends are failing, so that is logged once.
type groupState struct {
	sent, recv, announced prometheus.Counter
	sendFailing           bool
}

// lastRoute is where the last advert went: an Active writes every advert
// of a group to the same socket, at 10 ms adverts 100 times a second, and
// looking both up in their maps, with the caches cold after each sleep,
// cost more than the rest of the send. Closing a socket or forgetting a
// group clears it.
type lastRoute struct {
	socket node.Socket
	group  string
	s      *vrrpSocket
	g      *groupState
}

// advertRoute returns the group and the (possibly nil) socket of e.
func (a *Agent) advertRoute(e node.SendAdvert) (*groupState, *vrrpSocket) {
	r := &a.lastRoute
	if r.g == nil || r.s == nil || r.group != e.Group || r.socket != e.Socket {
		*r = lastRoute{socket: e.Socket, group: e.Group, s: a.vrrp[e.Socket], g: a.group(e.Group)}
	}
	return r.g, r.s
}

func (a *Agent) group(name string) *groupState {
	g := a.groups[name]
	if g == nil {
		g = &groupState{
			sent:      a.met.advertsSent.WithLabelValues(name),
			recv:      a.met.advertsReceived.WithLabelValues(name),
			announced: a.met.announcements.WithLabelValues(name),
		}
		// The error counters exist from the start, at zero: an alert on
		// their rate works before the first error.
		a.met.sendErrors.WithLabelValues(name)
		a.met.vipErrors.WithLabelValues(name, "add")
		a.met.vipErrors.WithLabelValues(name, "remove")
		a.groups[name] = g
	}
	return g
}
