package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/mwgc/mwgc/runtime/nft"
	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// fakeNet records what the agent does to the host.
type fakeNet struct {
	mu         sync.Mutex
	calls      []string // "add eth0 192.0.2.100/24", "remove ...", "listen ...", "ll ..."
	conns      map[string]*fakeConn
	announced  map[netip.Addr]int
	failListen map[string]bool
	// Link state: the interfaces of the fake host by index; WatchLinks
	// lists them and setLink reports changes.
	links      []LinkState
	linkReport LinkReport
}

func newFakeNet() *fakeNet {
	return &fakeNet{conns: map[string]*fakeConn{}, announced: map[netip.Addr]int{}, failListen: map[string]bool{},
		links: []LinkState{{Index: 1, Name: "lo", Up: true}, {Index: 2, Name: "eth0", Up: true}, {Index: 3, Name: "eth1", Up: true}}}
}

func (f *fakeNet) WatchLinks(ctx context.Context, report LinkReport, warn func(error)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.linkReport = report
	report(true, slices.Clone(f.links))
	return nil
}

// setLink changes an interface's state and reports it as the kernel would.
func (f *fakeNet) setLink(name string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.links {
		if f.links[i].Name == name {
			f.links[i].Up = up
			if f.linkReport != nil {
				f.linkReport(false, []LinkState{f.links[i]})
			}
			return
		}
	}
	panic("fakeNet: no interface " + name)
}

func (f *fakeNet) record(format string, a ...any) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
	f.mu.Unlock()
}

func (f *fakeNet) callsMatching(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeNet) Listen(ifname string, ipv6 bool, source netip.Addr) (PacketConn, error) {
	key := fmt.Sprintf("%s/%v/%v", ifname, ipv6, source)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failListen[ifname] {
		return nil, errors.New("no such device")
	}
	f.calls = append(f.calls, "listen "+key)
	c := newFakeConn()
	f.conns[key] = c
	return c, nil
}

func (f *fakeNet) ListenSendOnly(ifname string, ipv6 bool, source netip.Addr) (PacketConn, error) {
	key := fmt.Sprintf("%s/%v/%v", ifname, ipv6, source)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "listen-send-only "+key)
	c := newFakeConn()
	f.conns[key] = c
	return c, nil
}

func (f *fakeNet) EnsureVMAC(name, parent string, vrid uint8, ipv6 bool) error {
	f.record("vmac-ensure %s %s %d %v", name, parent, vrid, ipv6)
	return nil
}

func (f *fakeNet) SetVMAC(name string, active bool, linkLocal netip.Addr) error {
	f.record("vmac-set %s %v", name, active)
	return nil
}

func (f *fakeNet) RemoveVMAC(name string) error {
	f.record("vmac-remove %s", name)
	return nil
}

func (f *fakeNet) conn(key string) *fakeConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns[key]
}

func (f *fakeNet) ListenMgmt(ifname string, port int) (MgmtConn, error) {
	return nil, errors.New("fakeNet: no management protocol")
}

func (f *fakeNet) AddVIP(ifname string, p netip.Prefix) error {
	f.record("add %s %v", ifname, p)
	return nil
}

func (f *fakeNet) RemoveVIP(ifname string, p netip.Prefix) error {
	f.record("remove %s %v", ifname, p)
	return nil
}

func (f *fakeNet) EndConnections(a netip.Addr) (int, error) {
	f.record("end connections %v", a)
	return 0, nil
}

func (f *fakeNet) EnsureLinkLocal(ifname string, a netip.Addr) error {
	f.record("ll %s %v", ifname, a)
	return nil
}

func (f *fakeNet) ApplyRules(s nft.State) error {
	var vips []string
	for _, a := range s.DropVIPs {
		vips = append(vips, a.String())
	}
	f.record("rules drop [%s]", strings.Join(vips, " "))
	return nil
}

func (f *fakeNet) CleanRules() error {
	f.record("rules clean")
	return nil
}

func (f *fakeNet) OpenAnnouncer(ifname string) (Announcer, error) { return fakeAnnouncer{f}, nil }

type fakeAnnouncer struct{ f *fakeNet }

func (a fakeAnnouncer) Announce(v netip.Addr) error {
	a.f.mu.Lock()
	a.f.announced[v]++
	a.f.mu.Unlock()
	return nil
}
func (a fakeAnnouncer) Close() error { return nil }

func (f *fakeNet) announcements(v string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.announced[netip.MustParseAddr(v)]
}

type fakePacket struct {
	src, dst netip.Addr
	data     []byte
}

// fakeConn is a VRRP socket of the fake host: a datagram socket pair, so
// the agent's loop polls a real descriptor. inject puts a packet on the
// wire towards the agent; WritePacket records what the agent sent.
type fakeConn struct {
	fd, peer  int
	mu        sync.Mutex
	written   [][]byte
	writtenTo []unicastWrite // WritePacketTo, in order
	closed    chan struct{}
	closeOnce sync.Once
}

func newFakeConn() *fakeConn {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		panic(err)
	}
	return &fakeConn{fd: fds[0], peer: fds[1], closed: make(chan struct{})}
}

// inject frames a packet as src(16) dst(16) ttl(1) data.
func (c *fakeConn) inject(p fakePacket) {
	src, dst := p.src.As16(), p.dst.As16()
	frame := append(append(append(src[:], dst[:]...), 255), p.data...)
	if _, err := unix.Write(c.peer, frame); err != nil && !c.isClosed() {
		panic(err)
	}
}

func (c *fakeConn) Fd() int { return c.fd }

func (c *fakeConn) TryReadPacket(buf []byte) (int, netip.Addr, netip.Addr, int, error) {
	var frame [65536]byte
	n, err := unix.Read(c.fd, frame[:])
	if err == unix.EAGAIN {
		return 0, netip.Addr{}, netip.Addr{}, 0, ErrWouldBlock
	}
	if err != nil {
		return 0, netip.Addr{}, netip.Addr{}, 0, err
	}
	src := netip.AddrFrom16([16]byte(frame[:16])).Unmap()
	dst := netip.AddrFrom16([16]byte(frame[16:32])).Unmap()
	return copy(buf, frame[33:n]), src, dst, int(frame[32]), nil
}

func (c *fakeConn) WritePacket(msg []byte) error {
	c.mu.Lock()
	c.written = append(c.written, slices.Clone(msg))
	c.mu.Unlock()
	return nil
}

func (c *fakeConn) WritePacketTo(msg []byte, to netip.Addr) error {
	c.mu.Lock()
	c.writtenTo = append(c.writtenTo, unicastWrite{to: to, data: slices.Clone(msg)})
	c.mu.Unlock()
	return nil
}

func (c *fakeConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		unix.Close(c.fd)
		unix.Close(c.peer)
	})
	return nil
}

func (c *fakeConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// adverts parses what was written so far.
func (c *fakeConn) adverts(t *testing.T, src netip.Addr) []*vrrp.Advert {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*vrrp.Advert
	for _, b := range c.written {
		ad, _, err := vrrp.Parse(b, src, netip.MustParseAddr("224.0.0.18"))
		if err != nil {
			t.Fatalf("agent wrote an advert that does not parse: %v", err)
		}
		out = append(out, ad)
	}
	return out
}

var (
	self = netip.MustParseAddr("192.0.2.11")
	peer = netip.MustParseAddr("192.0.2.12")
)

const connV4 = "eth0/false/192.0.2.11"

func testPlan() *plan.Plan {
	return &plan.Plan{
		APIVersion: plan.APIVersion, Cluster: "edge", Node: "a", Mode: plan.ModeTransparentRouter,
		Interfaces: []plan.Interface{
			{Name: "eth0", Segment: "inside", Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.11/24")}},
			{Name: "eth1", Segment: "outside", Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.11/24")}},
		},
		VRRP: &plan.VRRP{
			Priority: 200,
			Announce: plan.Announce{Count: 2, Interval: plan.Duration(time.Millisecond)},
			Groups: []plan.Group{{
				Name: "inside-v4", VRID: 51, Interface: "eth0", Family: plan.FamilyIPv4, Version: 3,
				AdvertInterval: plan.Duration(10 * time.Millisecond), Preempt: true,
				Checksum: plan.ChecksumPseudoHeader, Source: self,
				VIPs:  []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")},
				Peers: []plan.Peer{{Name: "b", Address: peer, Priority: 100}},
			}},
		},
	}
}

type harness struct {
	t      *testing.T
	net    *fakeNet
	agent  *Agent
	path   string
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, p *plan.Plan) *harness {
	t.Helper()
	return startWith(t, newFakeNet(), p)
}

func startWith(t *testing.T, fn *fakeNet, p *plan.Plan) *harness {
	t.Helper()
	return startOn(t, fn, fn, p, nil, false)
}

// startOn runs an agent on network n (fn is the fake part of it) with a
// registry of its own unless reg is given; noWatch leaves reloads to
// Reload alone.
func startOn(t *testing.T, n Network, fn *fakeNet, p *plan.Plan, reg *prometheus.Registry, noWatch bool) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, net: fn, path: filepath.Join(dir, "plan.json"), done: make(chan error, 1)}
	h.write(p)
	a, err := New(Config{PlanPath: h.path, Network: n, Debounce: 20 * time.Millisecond, Registry: reg, NoWatch: noWatch,
		Logger: slog.New(slog.NewTextHandler(logSink(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	h.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(func() { h.stop() })
	h.eventually("loop running", func() bool { return a.Status() != nil })
	return h
}

func (h *harness) stop() error {
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not return after cancel")
		return nil
	}
}

func (h *harness) write(p *plan.Plan) {
	h.t.Helper()
	b, err := plan.Encode(p)
	if err != nil {
		h.t.Fatal(err)
	}
	h.writeRaw(b)
}

func (h *harness) writeRaw(b []byte) {
	h.t.Helper()
	tmp := h.path + ".new"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.path); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			if st := h.agent.Status(); st != nil {
				h.t.Logf("status at the timeout: %+v", *st)
			}
			h.t.Fatalf("%s: not reached in 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) status() *Status {
	h.t.Helper()
	s := h.agent.Status()
	if s == nil {
		h.t.Fatal("no status")
	}
	return s
}

// metric scrapes /metrics through the agent's handler.
func (h *harness) metric(series string) float64 {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.agent.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

func (h *harness) waitActive() {
	h.t.Helper()
	h.eventually("Active", func() bool { return h.status().State == "Active" })
}

func TestStartCleansUpThenTakesOver(t *testing.T) {
	h := start(t, testPlan())
	h.waitActive()
	calls := h.net.callsMatching("")
	// A crashed run's nftables tables go, and the VIP of the group
	// without accept mode is filtered before it can be added. A VIP a
	// crashed run left stays (it may be serving clients) until another
	// Active is heard; this node takes over, so it is never removed.
	if diff := cmp.Diff([]string{"rules clean", "rules drop [192.0.2.100]", "listen " + connV4, "add eth0 192.0.2.100/24"}, calls[:4]); diff != "" {
		t.Errorf("start-up order (-want +got):\n%s", diff)
	}
	if n := len(h.net.callsMatching("remove ")); n != 0 {
		t.Errorf("%d removals: the VIP this node takes over was removed", n)
	}
	h.eventually("VIP added", func() bool { return len(h.net.callsMatching("add eth0 192.0.2.100/24")) == 1 })
	h.eventually("burst of 2", func() bool { return h.net.announcements("192.0.2.100") == 2 })
	s := h.status()
	if diff := cmp.Diff([]string{"192.0.2.100/24"}, s.Groups[0].VIPs); diff != "" {
		t.Errorf("held VIPs (-want +got):\n%s", diff)
	}
	if v := h.metric(`mwgc_agent_state{group="inside-v4"}`); v != 2 {
		t.Errorf("state gauge = %v, want 2 (Active)", v)
	}
	if v := h.metric(`mwgc_agent_plan_info{cluster="edge",digest="` + s.Digest + `",node="a"}`); v != 1 {
		t.Errorf("plan_info for the running digest = %v", v)
	}

	// Graceful stop: priority-0 advert, VIP removed, Run returns nil.
	c := h.net.conn(connV4)
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	ads := c.adverts(t, self)
	if last := ads[len(ads)-1]; last.Priority != 0 {
		t.Errorf("last advert has priority %d, want 0", last.Priority)
	}
	if n := len(h.net.callsMatching("remove eth0 192.0.2.100/24")); n < 2 {
		t.Errorf("VIP removed %d times (start-up and shutdown expected)", n)
	}
	if !c.isClosed() {
		t.Error("socket left open")
	}
	if rules := h.net.callsMatching("rules"); rules[len(rules)-1] != "rules drop []" {
		t.Errorf("nftables rules at stop: %v, want mwgc's tables removed last", rules)
	}
}

func TestReloadKeepsUnchangedGroupUntouched(t *testing.T) {
	h := start(t, testPlan())
	h.waitActive()
	h.eventually("burst done", func() bool { return h.net.announcements("192.0.2.100") == 2 })
	before := h.net.callsMatching("")
	transitions := h.status().Groups[0].Transitions

	p := testPlan()
	p.VRRP.Announce.Count = 5              // not a group setting
	p.VRRP.Groups[0].Peers[0].Priority = 1 // informational only
	p.VRRP.Groups[0].Peers[0].Name = "b-renamed"
	h.write(p)
	h.eventually("reloaded", func() bool { return h.metric(`mwgc_agent_reloads_total{result="ok"}`) == 1 })
	time.Sleep(50 * time.Millisecond)

	if diff := cmp.Diff(before, h.net.callsMatching("")); diff != "" {
		t.Errorf("an unchanged group caused host changes (-before +after):\n%s", diff)
	}
	if got := h.status().Groups[0].Transitions; got != transitions {
		t.Errorf("transitions %d -> %d", transitions, got)
	}
	if n := h.net.announcements("192.0.2.100"); n != 2 {
		t.Errorf("VIP announced %d times, want only the takeover burst (2)", n)
	}
	if s := h.status(); s.State != "Active" {
		t.Errorf("state %s after reload", s.State)
	}
}

func TestReloadVIPDiff(t *testing.T) {
	h := start(t, testPlan())
	h.waitActive()
	p := testPlan()
	p.VRRP.Groups[0].VIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.101/24")}
	h.write(p)
	h.eventually("new VIP", func() bool { return len(h.net.callsMatching("add eth0 192.0.2.101/24")) == 1 })
	h.eventually("old VIP gone", func() bool { return len(h.net.callsMatching("remove eth0 192.0.2.100/24")) == 1 })
	h.eventually("new VIP announced", func() bool { return h.net.announcements("192.0.2.101") == 2 })
	// The old VIP's connections end right after it goes; nothing else's.
	calls := h.net.callsMatching("")
	i := slices.Index(calls, "remove eth0 192.0.2.100/24")
	if i < 0 || i+1 >= len(calls) || calls[i+1] != "end connections 192.0.2.100" {
		t.Errorf("calls after the old VIP's removal: %q, want its connections ended next", calls[max(i, 0):])
	}
	if ended := h.net.callsMatching("end connections "); len(ended) != 1 {
		t.Errorf("connections ended: %q, want only the old VIP's", ended)
	}
	s := h.status()
	if diff := cmp.Diff([]string{"192.0.2.101/24"}, s.Groups[0].VIPs); diff != "" {
		t.Errorf("held VIPs (-want +got):\n%s", diff)
	}
	if s.State != "Active" || s.Groups[0].Transitions != 2 {
		t.Errorf("state %s transitions %d: the VIP change must not cause a transition", s.State, s.Groups[0].Transitions)
	}
}

func TestBadPlanRefusedOnce(t *testing.T) {
	h := start(t, testPlan())
	h.waitActive()
	digest := h.status().Digest
	bad := []byte(`{"apiVersion": "mwgc.dev/plan/v1", "surprise": true}`)
	h.writeRaw(bad)
	h.eventually("refused", func() bool { return h.metric(`mwgc_agent_reloads_total{result="refused"}`) == 1 })
	h.writeRaw(bad) // same content: remembered
	time.Sleep(100 * time.Millisecond)
	if v := h.metric(`mwgc_agent_reloads_total{result="refused"}`); v != 1 {
		t.Errorf("the same bad content was tried again: refused = %v", v)
	}
	h.agent.Reload() // SIGHUP tries again
	h.eventually("refused again", func() bool { return h.metric(`mwgc_agent_reloads_total{result="refused"}`) == 2 })
	s := h.status()
	if s.Digest != digest || s.State != "Active" {
		t.Errorf("running plan changed: %s %s", s.Digest, s.State)
	}
	if s.LastReload == nil || s.LastReload.Result != "refused" || !strings.Contains(s.LastReload.Error, "surprise") {
		t.Errorf("lastReload does not explain the refusal: %+v", s.LastReload)
	}
}

func TestAddedGroupSocketFailureKeepsOldPlan(t *testing.T) {
	h := start(t, testPlan())
	h.waitActive()
	h.net.mu.Lock()
	h.net.failListen["eth1"] = true
	h.net.mu.Unlock()
	p := testPlan()
	p.VRRP.Groups = append(p.VRRP.Groups, plan.Group{
		Name: "outside-v4", VRID: 52, Interface: "eth1", Family: plan.FamilyIPv4, Version: 3,
		AdvertInterval: plan.Duration(10 * time.Millisecond), Preempt: true, Checksum: plan.ChecksumRFC9568,
		Source: netip.MustParseAddr("198.51.100.11"), VIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.100/24")},
	})
	h.write(p)
	h.eventually("failed", func() bool { return h.metric(`mwgc_agent_reloads_total{result="failed"}`) == 1 })
	if s := h.status(); len(s.Groups) != 1 || s.State != "Active" {
		t.Fatalf("after a failed reload: %d groups, %s", len(s.Groups), s.State)
	}

	// Once the interface exists, the same plan is applied: the new group
	// starts beside the running one, which is not touched.
	h.net.mu.Lock()
	h.net.failListen["eth1"] = false
	h.net.mu.Unlock()
	h.agent.Reload()
	h.eventually("two groups", func() bool { return len(h.status().Groups) == 2 })
	if n := len(h.net.callsMatching("listen " + connV4)); n != 1 {
		t.Errorf("the running group's socket was reopened (%d listens)", n)
	}

	// Removing it again hands it over with a priority-0 advert and closes
	// its socket.
	eth1 := h.net.conn("eth1/false/198.51.100.11")
	h.eventually("outside Active", func() bool { return h.status().Groups[1].State == "Active" })
	h.write(testPlan())
	h.eventually("one group", func() bool { return len(h.status().Groups) == 1 })
	ads := eth1.adverts(t, netip.MustParseAddr("198.51.100.11"))
	if last := ads[len(ads)-1]; last.Priority != 0 {
		t.Errorf("removed group's last advert has priority %d", last.Priority)
	}
	if !eth1.isClosed() {
		t.Error("removed group's socket left open")
	}
	if len(h.net.callsMatching("remove eth1 198.51.100.100/24")) < 2 {
		t.Error("removed group's VIP not removed")
	}
}

func TestPacketsDispatchedByVRID(t *testing.T) {
	h := start(t, testPlan())
	h.waitActive()
	c := h.net.conn(connV4)
	send := func(src netip.Addr, vrid, prio uint8) {
		ad := vrrp.Advert{Version: 3, Type: 1, VRID: vrid, Priority: prio, MaxAdvertInterval: 1,
			Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
		b, err := ad.Marshal(src, netip.MustParseAddr("224.0.0.18"), vrrp.ChecksumPseudoHeader)
		if err != nil {
			t.Fatal(err)
		}
		c.inject(fakePacket{src: src, dst: netip.MustParseAddr("224.0.0.18"), data: b})
	}
	send(peer, 99, 250) // another VRID
	h.eventually("unknown VRID counted", func() bool {
		return h.metric(`mwgc_agent_unknown_vrid_total{family="ipv4",interface="eth0"}`) == 1
	})
	send(netip.MustParseAddr("192.0.2.66"), 51, 255) // not in the plan
	h.eventually("rogue counted", func() bool {
		return h.metric(`mwgc_agent_drops_total{group="inside-v4",reason="unknown-source"}`) == 1
	})
	if s := h.status(); s.State != "Active" {
		t.Fatalf("rogue advert changed the state to %s", s.State)
	}
	// The plan gives the peer priority 100: its claim of 250 counts as 100
	// (the plan as election policy), is counted, and moves nothing.
	send(peer, 51, 250)
	h.eventually("disagreement counted", func() bool {
		return h.metric(`mwgc_agent_policy_disagreements_total{group="inside-v4",peer="192.0.2.12",reason="priority"}`) == 1
	})
	if s := h.status(); s.State != "Active" || s.Groups[0].Peers[0].Disagreements["priority"] != 1 {
		t.Fatalf("a claim above the plan moved the node: %+v", s)
	}
	send(peer, 51, 255) // not the owner: dropped
	h.eventually("not-owner counted", func() bool {
		return h.metric(`mwgc_agent_drops_total{group="inside-v4",reason="not-owner"}`) == 1
	})
	// A plan that gives the peer 250 lets it win.
	p := testPlan()
	p.VRRP.Groups[0].Peers[0].Priority = 250
	h.write(p)
	h.eventually("plan with the peer at 250", func() bool { return h.status().Groups[0].Peers[0].PlannedPriority == 250 })
	send(peer, 51, 250)
	h.eventually("Backup", func() bool { return h.status().State == "Backup" })
	h.eventually("VIP removed", func() bool { return len(h.net.callsMatching("remove eth0 192.0.2.100/24")) == 1 })
	if v := h.metric(`mwgc_agent_transitions_total{from="Active",group="inside-v4",to="Backup"}`); v != 1 {
		t.Errorf("Active->Backup transitions = %v", v)
	}
}

func TestNewRefusesBadPlan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(path, []byte(`{"apiVersion":"v0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{PlanPath: path, Network: newFakeNet()})
	if err == nil || !strings.Contains(err.Error(), "apiVersion") {
		t.Fatalf("New = %v, want an apiVersion error", err)
	}
}

// TestKubernetesSymlinkSwap: a ConfigMap volume replaces its content by
// renaming a new "..data" symlink over the old one; plan.json itself is a
// symlink that never changes. Watching the directory catches the swap.
func TestKubernetesSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	writeVersion := func(name string, p *plan.Plan) {
		b, err := plan.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "plan.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeVersion("..2026_v1", testPlan())
	if err := os.Symlink("..2026_v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/plan.json", filepath.Join(dir, "plan.json")); err != nil {
		t.Fatal(err)
	}
	fn := newFakeNet()
	a, err := New(Config{PlanPath: filepath.Join(dir, "plan.json"), Network: fn, Debounce: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logSink(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, net: fn, agent: a, path: filepath.Join(dir, "plan.json"), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(func() { h.stop() })
	h.eventually("running", func() bool { return a.Status() != nil })
	first := h.status().Digest

	p := testPlan()
	p.VRRP.Announce.Count = 7
	writeVersion("..2026_v2", p)
	if err := os.Symlink("..2026_v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	h.eventually("swap picked up", func() bool { return h.status().Digest != first })
	if v := h.metric(`mwgc_agent_reloads_total{result="ok"}`); v != 1 {
		t.Errorf("reloads ok = %v", v)
	}
}

// TestBurstReadInBatches: a burst of packets larger than one read batch is
// read to the end without waiting for a timer: the loop looks again
// before it parks (Go's poller reports the socket only when something new
// arrives). The node is a Backup with 1 s adverts here, so no timer wakes
// the loop for seconds.
func TestBurstReadInBatches(t *testing.T) {
	p := testPlan()
	p.VRRP.Groups[0].AdvertInterval = plan.Duration(time.Second)
	h := start(t, p)
	c := h.net.conn(connV4)
	ad := vrrp.Advert{Version: 3, Type: 1, VRID: 51, Priority: 250, MaxAdvertInterval: 100,
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	rogue := netip.MustParseAddr("192.0.2.66")
	b, err := ad.Marshal(rogue, netip.MustParseAddr("224.0.0.18"), vrrp.ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	const burst = 3*readBatch + 5
	for range burst {
		c.inject(fakePacket{src: rogue, dst: netip.MustParseAddr("224.0.0.18"), data: b})
	}
	deadline := time.Now().Add(time.Second) // well before the first timer (3.2 s)
	series := `mwgc_agent_drops_total{group="inside-v4",reason="unknown-source"}`
	for h.metric(series) < burst {
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d packets read after 1 s", h.metric(series), burst)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := h.status(); s.State != "Backup" {
		t.Fatalf("state %s: the test needs a Backup whose timer is far off", s.State)
	}
}

func logSink() io.Writer {
	if os.Getenv("AGENT_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

// unicastWrite is one advert the agent sent to a unicast peer.
type unicastWrite struct {
	to   netip.Addr
	data []byte
}
