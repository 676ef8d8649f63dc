package agent

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/impersonation"
	"github.com/mwgc/mwgc/runtime/node"
	"github.com/mwgc/mwgc/runtime/vrrpwatch"
)

// The executor's part of the impersonation alarms (docs/security.md): one
// runtime/vrrpwatch packet socket per interface the node names in Watch,
// each read by its own goroutine, which reports frames whose IP source is
// one of the node's own or its peers' addresses as WatchFrame events. A
// flood is coalesced: per source and MAC at most one event every
// watchReportEvery, carrying the count.

const watchReportEvery = 10 * time.Millisecond

type watchState struct {
	byIf  map[string]*watcher
	addrs atomic.Pointer[map[netip.Addr]bool]
	wg    sync.WaitGroup
	met   authMetrics
}

type watcher struct{ w *vrrpwatch.Watcher }

// watchNetwork is a Network that can watch interfaces (LinuxNetwork).
type watchNetwork interface {
	Watch(ifname string) (*vrrpwatch.Watcher, error)
}

// Watch opens an impersonation watcher on ifname (runtime/vrrpwatch).
func (LinuxNetwork) Watch(ifname string) (*vrrpwatch.Watcher, error) { return vrrpwatch.Listen(ifname) }

type authMetrics struct {
	disagreements  *prometheus.CounterVec
	impersonations *prometheus.CounterVec
	keyFileErrors  prometheus.Counter
}

func (s *watchState) init(reg prometheus.Registerer) {
	s.byIf = map[string]*watcher{}
	s.met = authMetrics{
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
	reg.MustRegister(s.met.disagreements, s.met.impersonations, s.met.keyFileErrors)
	for _, k := range impersonation.Kinds() {
		s.met.impersonations.WithLabelValues(k.String())
	}
}

// authReport counts the node's authentication, policy and alarm reports;
// false for effects that are not its.
func (a *Agent) authReport(e node.Effect) bool {
	switch e := e.(type) {
	case node.Impersonation:
		a.spoof.met.impersonations.WithLabelValues(e.Kind).Add(float64(max(e.Count, 1)))
	case node.PolicyDisagreement:
		a.spoof.met.disagreements.WithLabelValues(e.Group, e.Peer.String(), e.Reason).Inc()
	case node.KeyFileRefused:
		a.spoof.met.keyFileErrors.Inc()
	case node.Watch:
		a.setWatch(e)
	case node.WatchClaims:
		a.setClaimWatch(e)
	default:
		return false
	}
	return true
}

// setWatch watches exactly the interfaces named.
func (a *Agent) setWatch(e node.Watch) {
	set := make(map[netip.Addr]bool, len(e.Addresses))
	for _, ad := range e.Addresses {
		set[ad.Unmap().WithZone("")] = true
	}
	a.spoof.addrs.Store(&set)
	if _, ok := a.net.(watchNetwork); !ok {
		return // a Network without watchers (tests of the loop)
	}
	want := map[string]bool{}
	for _, ifname := range e.Interfaces {
		want[ifname] = true
	}
	for ifname, w := range a.spoof.byIf {
		if !want[ifname] {
			w.w.Close()
			delete(a.spoof.byIf, ifname)
		}
	}
	for ifname := range want {
		if a.spoof.byIf[ifname] == nil {
			a.openWatch(ifname)
		}
	}
}

// openWatch opens and starts reading the impersonation watcher of ifname.
func (a *Agent) openWatch(ifname string) {
	wn, ok := a.net.(watchNetwork)
	if !ok {
		return
	}
	w, err := wn.Watch(ifname)
	if err != nil {
		a.log.Warn("cannot watch for impersonation; alarms for adverts with our own address are off", "interface", ifname, "err", err)
		return
	}
	a.spoof.byIf[ifname] = &watcher{w: w}
	a.spoof.wg.Add(1)
	go a.readWatcher(ifname, w)
}

// readWatcher reads one watcher until it is closed.
func (a *Agent) readWatcher(ifname string, w *vrrpwatch.Watcher) {
	defer a.spoof.wg.Done()
	var seen coalescer
	buf := make([]byte, 128)
	var f vrrpwatch.Frame
	for keepReading(w.Read(buf, &f)) {
		set := a.spoof.addrs.Load()
		if set == nil || !(*set)[f.Src] {
			continue
		}
		count, due := seen.add(f.Src, f.MAC, time.Now())
		if !due {
			continue
		}
		ev := node.WatchFrame{Interface: ifname, Src: f.Src, MAC: append([]byte(nil), f.MAC...), Count: count}
		a.post(func() { a.step(ev) })
	}
}

// coalescer turns a watcher's frames into reports: per address and MAC at
// most one every watchReportEvery, carrying how many frames came since
// the last. One per reader goroutine.
type coalescer struct {
	pending map[coalesceKey]*coalesced
}

type coalesceKey struct {
	addr netip.Addr
	mac  string
}

type coalesced struct {
	last  time.Time
	count uint64
}

// add counts a frame from addr and mac; due says a report is to be made
// now, with count frames.
func (c *coalescer) add(addr netip.Addr, mac net.HardwareAddr, now time.Time) (count uint64, due bool) {
	if c.pending == nil {
		c.pending = map[coalesceKey]*coalesced{}
	}
	k := coalesceKey{addr, mac.String()}
	s := c.pending[k]
	if s == nil {
		if len(c.pending) > 64 { // a forger rotating MACs: start over
			clear(c.pending)
		}
		s = &coalesced{}
		c.pending[k] = s
	}
	s.count++
	if !s.last.IsZero() && now.Sub(s.last) < watchReportEvery {
		return 0, false
	}
	count, s.last, s.count = s.count, now, 0
	return count, true
}

// keepReading tells a watcher's reader what to do after a Read: go on
// unless the watcher was closed. A packet socket returns once the error
// the kernel left pending on it when its interface went down (ENETDOWN):
// stopping there would end impersonation alarms and claim answers at the
// first link flap. Other errors are read past after a pause, so that a
// persistent one cannot spin.
func keepReading(err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed), errors.Is(err, syscall.EBADF):
		return false // closed (a read after Close gets EBADF)
	case errors.Is(err, syscall.ENETDOWN):
		return true
	}
	time.Sleep(watchReportEvery)
	return true
}

func (a *Agent) closeWatchers() {
	for ifname, w := range a.spoof.byIf {
		w.w.Close()
		delete(a.spoof.byIf, ifname)
	}
	a.spoof.wg.Wait()
}

// The executor's part of VIP claims (runtime/node claims.go): one
// runtime/vrrpwatch claim watcher per interface the node names in
// WatchClaims, filtered in the kernel to that interface's VIPs, each read
// by its own goroutine, which reports claims as ClaimFrame events,
// coalesced like the impersonation watchers' frames.

type claimState struct {
	byIf map[string]*claimWatcher
	wg   sync.WaitGroup
}

type claimWatcher struct {
	w     *vrrpwatch.ClaimWatcher
	addrs []netip.Addr
}

// claimNetwork is a Network that can watch for claims (LinuxNetwork).
type claimNetwork interface {
	WatchClaims(ifname string, addrs []netip.Addr) (*vrrpwatch.ClaimWatcher, error)
}

// WatchClaims opens a claim watcher on ifname for addrs (runtime/vrrpwatch).
func (LinuxNetwork) WatchClaims(ifname string, addrs []netip.Addr) (*vrrpwatch.ClaimWatcher, error) {
	return vrrpwatch.ListenClaims(ifname, addrs)
}

// setClaimWatch watches exactly the interfaces and addresses named: a
// watcher whose addresses changed is replaced by a new one.
func (a *Agent) setClaimWatch(e node.WatchClaims) {
	if _, ok := a.net.(claimNetwork); !ok {
		return // a Network without watchers (tests of the loop)
	}
	if a.claims.byIf == nil {
		a.claims.byIf = map[string]*claimWatcher{}
	}
	for ifname, w := range a.claims.byIf {
		if !slices.Equal(e.ByInterface[ifname], w.addrs) {
			w.w.Close()
			delete(a.claims.byIf, ifname)
		}
	}
	for ifname, addrs := range e.ByInterface {
		if a.claims.byIf[ifname] == nil && len(addrs) > 0 {
			a.openClaimWatch(ifname, addrs)
		}
	}
}

// openClaimWatch opens and starts reading the claim watcher of ifname.
func (a *Agent) openClaimWatch(ifname string, addrs []netip.Addr) {
	cn, ok := a.net.(claimNetwork)
	if !ok {
		return
	}
	w, err := cn.WatchClaims(ifname, addrs)
	if err != nil {
		a.log.Warn("cannot watch for VIP claims; another host's ARP for a VIP goes unanswered", "interface", ifname, "err", err)
		return
	}
	a.claims.byIf[ifname] = &claimWatcher{w: w, addrs: slices.Clone(addrs)}
	a.claims.wg.Add(1)
	go a.readClaims(ifname, w)
}

// readClaims reads one claim watcher until it is closed.
func (a *Agent) readClaims(ifname string, w *vrrpwatch.ClaimWatcher) {
	defer a.claims.wg.Done()
	var seen coalescer
	buf := make([]byte, 128)
	var c vrrpwatch.Claim
	for keepReading(w.Read(buf, &c)) {
		count, due := seen.add(c.Addr, c.MAC, time.Now())
		if !due {
			continue
		}
		ev := node.ClaimFrame{Interface: ifname, VIP: c.Addr, MAC: append([]byte(nil), c.MAC...), Kind: c.Kind, Count: count}
		a.post(func() { a.step(ev) })
	}
}

func (a *Agent) closeClaimWatchers() {
	for ifname, w := range a.claims.byIf {
		w.w.Close()
		delete(a.claims.byIf, ifname)
	}
	a.claims.wg.Wait()
}
