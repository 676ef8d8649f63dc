package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/node"
)

// vrrpSocket is an open VRRP socket and what the loop needs to read it.
type vrrpSocket struct {
	pc      PacketConn
	fd      int
	unknown prometheus.Counter // packets for VRIDs the node does not run
	// failingSince is when reads started failing (a vanished interface);
	// zero while they work. retryAt: the socket is paused until then.
	failingSince, lastLog, retryAt time.Time
	sendOnly                       bool // a virtual MAC's: never read
}

// retryReads is how long a socket whose reads fail is left alone.
const retryReads = 100 * time.Millisecond

// openVRRP opens a socket the node asked for and starts reading it (a
// send-only socket is never read).
func (a *Agent) openVRRP(key node.Socket) error {
	listen := a.net.Listen
	if key.SendOnly {
		listen = a.net.ListenSendOnly
	}
	pc, err := listen(key.Interface, key.IPv6, key.Source)
	if err != nil {
		return err
	}
	s := &vrrpSocket{pc: pc, fd: pc.Fd(), unknown: a.met.unknownVRID.WithLabelValues(key.Interface, key.Family()), sendOnly: key.SendOnly}
	if !s.sendOnly {
		if err := a.poll.add(s.fd, func() { a.readVRRP(key, s) }); err != nil {
			pc.Close()
			return err
		}
	}
	if old := a.vrrp[key]; old != nil { // the node asked twice: keep one
		a.closeVRRP(key, old)
	}
	a.vrrp[key] = s
	return nil
}

func (a *Agent) closeVRRP(key node.Socket, s *vrrpSocket) {
	if !s.retryAt.IsZero() {
		a.paused--
	}
	if !s.sendOnly {
		a.poll.remove(s.fd)
	}
	s.pc.Close()
	delete(a.vrrp, key)
	a.lastRoute = lastRoute{}
}

// readBatch is how many packets a socket hands over before the loop looks
// at its other work again (the socket stays ready and is read next round).
const readBatch = 64

// readVRRP hands queued packets to the node, at most readBatch of them. A
// flood of adverts (forged ones included) must not hold the node's own
// adverts back: before every packet, a deadline that has come is served
// first.
func (a *Agent) readVRRP(key node.Socket, s *vrrpSocket) {
	for i := 0; a.vrrp[key] == s && !a.stopped; i++ {
		if i == readBatch {
			a.poll.more = true
			return
		}
		if d := a.node.Deadline(); !d.IsZero() && !time.Now().Before(d) {
			a.step(node.Tick{})
		}
		n, src, dst, ttl, err := s.pc.TryReadPacket(a.buf)
		if err == ErrWouldBlock {
			return
		}
		if err != nil {
			a.readFailed(key, s, err)
			return
		}
		if !s.failingSince.IsZero() {
			a.log.Info("reading VRRP socket again", "interface", key.Interface, "family", key.Family())
			s.failingSince, s.lastLog = time.Time{}, time.Time{}
		}
		// The node keeps the data only while the step runs.
		a.step(node.VRRPPacket{Socket: key, Src: src, Dst: dst, TTL: ttl, Data: a.buf[:n]})
	}
}

// readFailed reports a socket that fails every read (a vanished
// interface) once, then every minute, not at every wake-up; the socket
// is left out of the loop for a while so a persistent error cannot spin.
func (a *Agent) readFailed(key node.Socket, s *vrrpSocket, err error) {
	now := time.Now()
	if s.failingSince.IsZero() {
		s.failingSince = now
	}
	if now.Sub(s.lastLog) >= time.Minute {
		s.lastLog = now
		a.log.Warn("cannot read VRRP socket", "interface", key.Interface, "family", key.Family(),
			"failing_for", now.Sub(s.failingSince).Round(time.Millisecond).String(), "err", err)
	}
	a.poll.pause(s.fd, true)
	s.retryAt = now.Add(retryReads)
	a.paused++
}

// retryVRRP watches sockets again whose pause after a read error is over.
func (a *Agent) retryVRRP(now time.Time) {
	for _, s := range a.vrrp {
		if !s.retryAt.IsZero() && !now.Before(s.retryAt) {
			s.retryAt = time.Time{}
			a.paused--
			a.poll.pause(s.fd, false)
		}
	}
}

// mgmtSocket is the open management socket. While answers flow (a
// director with many nodes), the loop drains it, then leaves it alone for
// a moment so that datagrams gather, instead of waking for each one.
type mgmtSocket struct {
	mc       MgmtConn
	fd       int
	resumeAt time.Time // while paused: when to drain again
}

func (a *Agent) openMgmt(key node.MgmtSocket) error {
	mc, err := a.net.ListenMgmt(key.Interface, key.Port)
	if err != nil {
		return err
	}
	s := &mgmtSocket{mc: mc, fd: mc.Fd()}
	if err := a.poll.add(s.fd, func() { a.readMgmt(key, s) }); err != nil {
		mc.Close()
		return err
	}
	if old := a.mgmt[key]; old != nil {
		a.closeMgmt(key, old)
	}
	a.mgmt[key] = s
	return nil
}

func (a *Agent) closeMgmt(key node.MgmtSocket, s *mgmtSocket) {
	if !s.resumeAt.IsZero() {
		a.paused--
	}
	a.poll.remove(s.fd)
	s.mc.Close()
	delete(a.mgmt, key)
}

// readMgmt drains the socket; when it found traffic, it pauses the socket
// for a twentieth of the discovery interval (at most 20 ms; protocol
// timers are 100 ms and up, so the delay changes no outcome).
func (a *Agent) readMgmt(key node.MgmtSocket, s *mgmtSocket) {
	got := 0
	for a.mgmt[key] == s && !a.stopped {
		if d := a.node.Deadline(); !d.IsZero() && !time.Now().Before(d) {
			a.step(node.Tick{})
		}
		n, src, ok, err := s.mc.TryRead(a.buf)
		if err != nil {
			a.log.Error("management socket read failed", "err", err)
			break
		}
		if !ok {
			break
		}
		got++
		a.step(node.MgmtPacket{Socket: key, Src: src, Data: a.buf[:n]})
	}
	if got == 0 || a.mgmt[key] != s {
		return
	}
	pause := 20 * time.Millisecond
	if p := a.node.Plan(); p != nil && p.Management != nil {
		pause = min(p.Management.DiscoveryInterval.D()/20, pause)
	}
	if s.resumeAt.IsZero() {
		a.poll.pause(s.fd, true)
		a.paused++
	}
	s.resumeAt = time.Now().Add(pause)
}

// resumeMgmt drains paused sockets that are due; one that stays quiet is
// watched again.
func (a *Agent) resumeMgmt(now time.Time) {
	for key, s := range a.mgmt {
		if s.resumeAt.IsZero() || now.Before(s.resumeAt) {
			continue
		}
		s.resumeAt = time.Time{}
		a.paused--
		a.readMgmt(key, s)
		if s.resumeAt.IsZero() && a.mgmt[key] == s {
			a.poll.pause(s.fd, false)
		}
	}
}
