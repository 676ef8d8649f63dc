package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// Probe is one request the client sent and, if it came back, when.
type Probe struct {
	Sent, Answered time.Time // Answered is zero when no answer came
}

// Prober is a client in a lab node that pings a VIP every Period (ICMP
// echo) and, with a TCP port, keeps a TCP connection to it open and
// exchanges a small message every Period, reconnecting at once when the
// connection breaks. It records every probe, so failovers can be judged by
// what the client saw.
type Prober struct {
	Period time.Duration

	lab    *netlab.Lab
	node   string
	target netip.Addr
	port   int
	from   int // fixed TCP source port, 0: an ephemeral one
	id     uint16

	mu       sync.Mutex
	pings    []Probe
	bySeq    map[uint16]int // ICMP sequence -> index in pings (latest)
	tcp      []Probe
	tcpBreak []time.Time // when a TCP connection broke (reset, EOF)

	fd   int // raw ICMP socket with kernel receive timestamps
	stop chan struct{}
	wg   sync.WaitGroup
}

// StartProber starts probing target from node every period; tcpPort 0
// means ICMP only. Stop it with Stop (also done at cleanup).
func StartProber(t testing.TB, lab *netlab.Lab, node string, target netip.Addr, period time.Duration, tcpPort int) *Prober {
	t.Helper()
	return StartProberFrom(t, lab, node, target, period, tcpPort, 0)
}

// StartProberFrom is StartProber with every TCP connection from one
// source port, so each reconnection has the 4-tuple of the one before:
// what a busy client's ephemeral ports do sooner or later, made certain.
func StartProberFrom(t testing.TB, lab *netlab.Lab, node string, target netip.Addr, period time.Duration, tcpPort, sourcePort int) *Prober {
	t.Helper()
	p := &Prober{Period: period, lab: lab, node: node, target: target, port: tcpPort, from: sourcePort,
		id: uint16(rand.Uint32()), bySeq: map[uint16]int{}, stop: make(chan struct{})}
	if err := lab.Do(node, func() (err error) {
		p.fd, err = icmpSocket(target.Is6())
		return err
	}); err != nil {
		t.Fatalf("prober: ICMP socket in %s: %v", node, err)
	}
	p.wg.Add(2)
	go p.sendPings()
	go p.readPings()
	if tcpPort != 0 {
		p.wg.Add(1)
		go p.runTCP()
	}
	t.Cleanup(p.Stop)
	return p
}

// Stop ends probing; the records stay.
func (p *Prober) Stop() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.wg.Wait()
	unix.Close(p.fd)
}

// icmpSocket opens a raw ICMP socket that stamps every received packet
// with the kernel's arrival time, so a busy test process does not make
// answers look late. Reads time out every 100 ms to notice Stop.
func icmpSocket(ipv6 bool) (int, error) {
	domain, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if ipv6 {
		domain, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, err
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (p *Prober) sendPings() {
	defer p.wg.Done()
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if p.target.Is6() {
		typ = ipv6.ICMPTypeEchoRequest
	}
	var dst unix.Sockaddr
	if p.target.Is6() {
		dst = &unix.SockaddrInet6{Addr: p.target.As16()}
	} else {
		dst = &unix.SockaddrInet4{Addr: p.target.As4()}
	}
	tick := time.NewTicker(p.Period)
	defer tick.Stop()
	for seq := uint16(0); ; seq++ {
		msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(p.id), Seq: int(seq), Data: []byte("mwgc-probe")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			panic(err)
		}
		p.mu.Lock()
		p.bySeq[seq] = len(p.pings)
		p.pings = append(p.pings, Probe{Sent: time.Now()})
		p.mu.Unlock()
		unix.Sendto(p.fd, b, 0, dst) // a send error is a lost probe
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

func (p *Prober) readPings() {
	defer p.wg.Done()
	proto := 1
	if p.target.Is6() {
		proto = 58
	}
	buf := make([]byte, 1500)
	oob := make([]byte, 128)
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(p.fd, buf, oob, 0)
		if err != nil {
			continue // the 100 ms receive timeout, or an interrupted call
		}
		at := kernelTime(oob[:oobn])
		msg := buf[:n]
		var src netip.Addr
		switch sa := from.(type) {
		case *unix.SockaddrInet4:
			src = netip.AddrFrom4(sa.Addr)
			if len(msg) < 20 {
				continue
			}
			msg = msg[int(msg[0]&0x0f)*4:] // an IPv4 raw socket hands over the IP header
		case *unix.SockaddrInet6:
			src = netip.AddrFrom16(sa.Addr)
		}
		if src != p.target {
			continue
		}
		m, err := icmp.ParseMessage(proto, msg)
		if err != nil {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) || echo.ID != int(p.id) {
			continue
		}
		p.mu.Lock()
		if i, ok := p.bySeq[uint16(echo.Seq)]; ok && p.pings[i].Answered.IsZero() {
			p.pings[i].Answered = at
		}
		p.mu.Unlock()
	}
}

// kernelTime is the arrival time the kernel stamped (SO_TIMESTAMPNS), or
// now when there is none.
func kernelTime(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
				return time.Unix(sec, nsec)
			}
		}
	}
	return time.Now()
}

// runTCP keeps one connection to the target and sends an 8-byte sequence
// number every Period; the echo server sends it back.
func (p *Prober) runTCP() {
	defer p.wg.Done()
	addr := net.JoinHostPort(p.target.String(), fmt.Sprint(p.port))
	for {
		var c net.Conn
		err := p.lab.Do(p.node, func() (err error) {
			c, err = p.dialer().Dial("tcp", addr)
			return err
		})
		if err != nil {
			select {
			case <-p.stop:
				return
			case <-time.After(p.Period):
				continue
			}
		}
		p.exchange(c)
		c.Close()
		select {
		case <-p.stop:
			return
		default:
		}
	}
}

func (p *Prober) dialer() *net.Dialer {
	d := &net.Dialer{Timeout: time.Second}
	if p.from != 0 {
		d.LocalAddr = &net.TCPAddr{Port: p.from}
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var err error
			c.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) })
			return err
		}
	}
	return d
}

// exchange runs one connection until it breaks or probing stops.
func (p *Prober) exchange(c net.Conn) {
	done := make(chan struct{})
	broke := make(chan struct{})
	go func() { // reader
		defer close(broke)
		var b [8]byte
		for {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				select {
				case <-done:
				default:
					p.mu.Lock()
					p.tcpBreak = append(p.tcpBreak, time.Now())
					p.mu.Unlock()
				}
				return
			}
			now := time.Now()
			i := int(binary.BigEndian.Uint64(b[:]))
			p.mu.Lock()
			if i < len(p.tcp) && p.tcp[i].Answered.IsZero() {
				p.tcp[i].Answered = now
			}
			p.mu.Unlock()
		}
	}()
	defer func() { close(done); c.Close(); <-broke }()
	tick := time.NewTicker(p.Period)
	defer tick.Stop()
	for {
		p.mu.Lock()
		i := len(p.tcp)
		p.tcp = append(p.tcp, Probe{Sent: time.Now()})
		p.mu.Unlock()
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(b[:]); err != nil {
			return
		}
		select {
		case <-p.stop:
			return
		case <-broke:
			return
		case <-tick.C:
		}
	}
}

// Pings returns the ICMP probes sent in [from, to).
func (p *Prober) Pings(from, to time.Time) []Probe { return p.window(p.pings, from, to) }

// TCP returns the TCP probes sent in [from, to).
func (p *Prober) TCP(from, to time.Time) []Probe { return p.window(p.tcp, from, to) }

// TCPBreaks counts TCP connections that broke in [from, to).
func (p *Prober) TCPBreaks(from, to time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, t := range p.tcpBreak {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return n
}

func (p *Prober) window(all []Probe, from, to time.Time) []Probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Probe
	for _, pr := range all {
		if !pr.Sent.Before(from) && pr.Sent.Before(to) {
			out = append(out, pr)
		}
	}
	return out
}

// BadRTT is the round trip beyond which a probe counts as not answered
// in time (an answer held back by neighbour resolution, say).
const BadRTT = 50 * time.Millisecond

func bad(pr Probe) bool { return pr.Answered.IsZero() || pr.Answered.Sub(pr.Sent) > BadRTT }

// Outage is the longest time the client was cut off among probes (sent in
// [from, to), in order): from the first probe of a run of lost (or late)
// ones to the answer of the next good probe, or to to when none came. A
// client that loses nothing sees 0; a stall of the prober itself (no
// probe sent) is not an outage.
func Outage(probes []Probe, to time.Time) time.Duration {
	var worst time.Duration
	start := -1
	for i, pr := range probes {
		switch {
		case bad(pr) && start < 0:
			start = i
		case !bad(pr) && start >= 0:
			worst = max(worst, pr.Answered.Sub(probes[start].Sent))
			start = -1
		}
	}
	if start >= 0 {
		worst = max(worst, to.Sub(probes[start].Sent))
	}
	return worst
}

// ReachedAfter is how long after t the client got through for good: 0
// when no probe sent at or after t was lost or late; else the time to the
// answer of the first good probe after the last bad one. ok is false when
// the last probe was still lost or late.
func ReachedAfter(probes []Probe, t time.Time) (time.Duration, bool) {
	var after []Probe
	for _, pr := range probes {
		if !pr.Sent.Before(t) {
			after = append(after, pr)
		}
	}
	lastBad := -1
	for i, pr := range after {
		if bad(pr) {
			lastBad = i
		}
	}
	switch {
	case lastBad < 0:
		return 0, true
	case lastBad == len(after)-1:
		return 0, false
	}
	return max(0, after[lastBad+1].Answered.Sub(t)), true
}

// LostAfter reports whether a probe sent at or after t was lost or late.
func LostAfter(probes []Probe, t time.Time) bool {
	for _, pr := range probes {
		if !pr.Sent.Before(t) && bad(pr) {
			return true
		}
	}
	return false
}

// Lost counts probes without an answer.
func Lost(probes []Probe) int {
	n := 0
	for _, pr := range probes {
		if pr.Answered.IsZero() {
			n++
		}
	}
	return n
}

// StartEchoServer listens on TCP port in node (every address) and echoes
// what each connection sends, for Prober's TCP probes. It stops at cleanup.
func StartEchoServer(t testing.TB, lab *netlab.Lab, node string, port int) {
	t.Helper()
	var ln net.Listener
	if err := lab.Do(node, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatalf("echo server in %s: %v", node, err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// Connections lists the TCP connections (listeners left out) whose local
// address is addr in node's namespace, as `ss` would: sock_diag, from
// outside the agent.
func Connections(lab *netlab.Lab, node string, addr netip.Addr) ([]string, error) {
	var out []string
	err := lab.Do(node, func() error {
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			socks, err := netlink.SocketDiagTCP(fam)
			if err != nil {
				return err
			}
			for _, s := range socks {
				local, ok := netip.AddrFromSlice(s.ID.Source)
				if ok && local.Unmap() == addr && s.State != netlink.TCP_LISTEN {
					out = append(out, fmt.Sprintf("%v:%d-%v:%d state %d", addr, s.ID.SourcePort, s.ID.Destination, s.ID.DestinationPort, s.State))
				}
			}
		}
		return nil
	})
	return out, err
}
