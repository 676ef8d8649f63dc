package e2e

import (
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// FaultKind is one way to make a VRRP pair fail over, as a client sees it.
type FaultKind string

// The faults of the client benchmark and the churn soak; how long a
// partition, a pause and the time before a quick restart last is Timing's.
const (
	FaultKill        FaultKind = "kill -9"           // the Active's process; restarted afterwards
	FaultTerm        FaultKind = "SIGTERM"           // graceful stop; restarted afterwards
	FaultLinkDown    FaultKind = "link down"         // the Active's eth0; up again afterwards
	FaultPartition   FaultKind = "partition"         // the directors cannot see each other, then heal
	FaultPause       FaultKind = "SIGSTOP"           // the Active's process stopped, then continued
	FaultKillRestart FaultKind = "kill -9 + restart" // crash and quick return
)

// Timing is how long the timed faults last and how long RunFault watches
// after the VIP settled.
type Timing struct {
	Partition, Pause, Restart time.Duration
	// Margin is how long the VIP must stay with one holder, beyond three
	// advert intervals, before a phase ends.
	Margin time.Duration
}

// BenchTiming is the issue's: a 3 s partition, SIGSTOP for 2 s, a restart
// 0.2 s after kill -9.
var BenchTiming = Timing{Partition: 3 * time.Second, Pause: 2 * time.Second, Restart: 200 * time.Millisecond, Margin: 500 * time.Millisecond}

// FaultKinds lists every kind, in the benchmark's order.
var FaultKinds = []FaultKind{FaultKill, FaultTerm, FaultLinkDown, FaultPartition, FaultPause, FaultKillRestart}

// restores says whether the kind ends with the pair already back to its
// first Active; the others need a second phase (restart, link up).
func (k FaultKind) restores() bool {
	return k == FaultPartition || k == FaultPause || k == FaultKillRestart
}

// Pair is one virtual router with two routers: A (the higher priority,
// Active at rest) and B. The functions act on a lab node of the pair.
type Pair struct {
	Name     string
	A, B     string
	VRID     int
	VIP      netip.Addr
	Interval time.Duration
	// BackupPriority is B's priority (for Active_Down_Interval).
	BackupPriority int
	// Sources are the nodes' advert source addresses, when known (to find
	// a node's adverts in a capture).
	Sources map[string]netip.Addr

	Kill, Start, Term, Stop, Cont func(t testing.TB, node string)
}

// ActiveDownInterval is B's Active_Down_Interval.
func (p *Pair) ActiveDownInterval() time.Duration {
	return ActiveDownInterval(p.BackupPriority, p.Interval)
}

// MwgcPair makes a Pair of two mwgc agents already started.
func MwgcPair(name string, a, b *Agent, vrid int, vip netip.Addr, interval time.Duration, backupPriority int) *Pair {
	agents := map[string]*Agent{a.Node: a, b.Node: b}
	return &Pair{Name: name, A: a.Node, B: b.Node, VRID: vrid, VIP: vip, Interval: interval, BackupPriority: backupPriority,
		Kill:  func(t testing.TB, n string) { agents[n].Proc.Kill(); agents[n].Proc.Wait(5 * time.Second) },
		Start: func(t testing.TB, n string) { agents[n].Start(t) },
		Term: func(t testing.TB, n string) {
			agents[n].Proc.Terminate()
			if err := agents[n].Proc.Wait(10 * time.Second); err != nil {
				t.Errorf("%s: mwgc-agent did not exit after SIGTERM: %v", n, err)
			}
		},
		Stop: func(t testing.TB, n string) { agents[n].Proc.Signal(syscall.SIGSTOP) },
		Cont: func(t testing.TB, n string) { agents[n].Proc.Signal(syscall.SIGCONT) },
	}
}

// KeepalivedPair makes a Pair of two keepalived instances, starting them
// with the given configurations (A's first).
func KeepalivedPair(t testing.TB, lab *netlab.Lab, name, a, b string, cfgA, cfgB netlab.KeepalivedConfig, vip netip.Addr) *Pair {
	cfgs := map[string]netlab.KeepalivedConfig{a: cfgA, b: cfgB}
	ks := map[string]*netlab.Keepalived{b: lab.StartKeepalived(b, cfgB), a: lab.StartKeepalived(a, cfgA)}
	in := cfgB.Instances[0]
	signal := func(n string, sig syscall.Signal) {
		k := ks[n]
		if pid, err := k.ChildPid(); err == nil {
			syscall.Kill(pid, sig)
		}
		k.Parent().Signal(sig)
	}
	return &Pair{Name: name, A: a, B: b, VRID: in.VRID, VIP: vip, Interval: in.AdvertInterval, BackupPriority: in.Priority,
		Kill:  func(t testing.TB, n string) { ks[n].Kill() },
		Start: func(t testing.TB, n string) { ks[n] = lab.StartKeepalived(n, cfgs[n]) },
		Term: func(t testing.TB, n string) {
			if err := ks[n].Stop(); err != nil {
				t.Errorf("%s: keepalived did not stop: %v", n, err)
			}
		},
		Stop: func(t testing.TB, n string) { signal(n, syscall.SIGSTOP) },
		Cont: func(t testing.TB, n string) { signal(n, syscall.SIGCONT) },
	}
}

// Phase is one measured span of a trial: the fault and what followed, or
// the return to the first Active afterwards (Restore).
type Phase struct {
	Pair    *Pair
	Kind    FaultKind
	Restore bool
	// From is when the fault (or the restoration) began, To the end of
	// the window; CauseGone is when the fault's cause ended (heal, resume,
	// restart, link up; From for a restoration).
	From, CauseGone, To time.Time
}

// Label names the phase in reports.
func (ph Phase) Label() string {
	if ph.Restore {
		return string(ph.Kind) + " (return)"
	}
	return string(ph.Kind)
}

// RunFault makes the pair fail over in the way kind says, waits until the
// VIP has settled (held by the expected node alone, as the observer sees
// it), and brings the pair back to A. It returns the measured phases, or
// an error when the VIP does not settle. Pairs on different nodes may run
// faults at the same time.
func RunFault(t testing.TB, lab *netlab.Lab, p *Pair, h *Holders, kind FaultKind, tm Timing) (phases []Phase, err error) {
	stable := 3 * p.Interval
	type unsettled struct{ error }
	defer func() {
		if r := recover(); r != nil {
			u, ok := r.(unsettled)
			if !ok {
				panic(r)
			}
			err = u.error
		}
	}()
	check := func(node string, sole bool, what string) {
		ok := false
		if sole {
			ok = h.WaitSole(p.VIP, node, stable, 15*time.Second)
		} else {
			ok = waitHas(h, p.VIP, node, stable, 15*time.Second)
		}
		if !ok {
			panic(unsettled{fmt.Errorf("%s, %s: %s does not hold %v (%s); holders:\n%s", p.Name, kind, node, p.VIP, what, h.String(p.VIP, time.Now().Add(-20*time.Second)))})
		}
	}
	// settle ends a phase: the VIP settled, and the client is watched a
	// little longer.
	settle := func(node string, sole bool, what string) {
		check(node, sole, what)
		time.Sleep(tm.Margin)
	}
	check(p.A, true, "before the fault")
	ph := Phase{Pair: p, Kind: kind, From: time.Now()}
	ph.CauseGone = ph.From
	switch kind {
	case FaultKill:
		p.Kill(t, p.A)
		settle(p.B, false, "after the crash") // the crashed node keeps its VIPs until it runs again
	case FaultTerm:
		p.Term(t, p.A)
		settle(p.B, true, "after SIGTERM")
	case FaultLinkDown:
		lab.LinkDown(p.A)
		settle(p.B, true, "with the Active's link down")
	case FaultPartition:
		lab.Isolate(p.A, true)
		lab.Isolate(p.B, true)
		time.Sleep(tm.Partition)
		ph.CauseGone = time.Now()
		lab.Isolate(p.A, false)
		lab.Isolate(p.B, false)
		settle(p.A, true, "after the heal")
	case FaultPause:
		p.Stop(t, p.A)
		time.Sleep(tm.Pause)
		ph.CauseGone = time.Now()
		p.Cont(t, p.A)
		settle(p.A, true, "after SIGCONT")
	case FaultKillRestart:
		p.Kill(t, p.A)
		time.Sleep(tm.Restart)
		p.Start(t, p.A)
		ph.CauseGone = time.Now() // running again (mwgc: its status listener answers)
		settle(p.A, true, "after the restart")
	default:
		return nil, fmt.Errorf("unknown fault kind %q", kind)
	}
	ph.To = time.Now()
	if kind.restores() {
		return []Phase{ph}, nil
	}
	back := Phase{Pair: p, Kind: kind, Restore: true, From: time.Now()}
	switch kind {
	case FaultKill, FaultTerm:
		p.Start(t, p.A)
	case FaultLinkDown:
		lab.LinkUp(p.A)
	}
	back.CauseGone = time.Now()
	if kind == FaultKill {
		// The crashed node keeps its VIPs until it runs again.
		ph.CauseGone = back.CauseGone
	}
	settle(p.A, true, "after the return")
	back.To = time.Now()
	return []Phase{ph, back}, nil
}

func waitHas(h *Holders, vip netip.Addr, node string, stable, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		cs := h.Changes(vip)
		if n := len(cs); n > 0 && slices.Contains(cs[n-1].Nodes, node) && time.Since(cs[n-1].At) >= stable {
			return true
		}
		time.Sleep(h.Period)
	}
	return false
}

// PhaseResult is what the client and the observer saw in one phase.
type PhaseResult struct {
	Phase
	// Outage is the longest span the client's pings were lost or late
	// (Outage); TCPOutage the same for the TCP exchange.
	Outage, TCPOutage time.Duration
	Lost              int // pings never answered
	TCPBreaks         int // TCP connections reset
	// Settled is when the election settled (from the capture): the first
	// advert of the final Active after the last advert of any other router.
	Settled time.Time
	// Reached is how long after Settled the client's pings got through
	// for good (0: none was lost after it); ReachedOK false: they were
	// still lost at the end.
	Reached   time.Duration
	ReachedOK bool
	// LostLate: a ping sent later than one advert interval after Settled
	// was lost or late.
	LostLate bool
}

// Blackhole reports a client cut off more than one advert interval after
// the election settled (an ARP-cache blackhole): a ping sent after that
// was lost or late. (A stall of the prober, which sends nothing, is no
// blackhole.)
func (r PhaseResult) Blackhole() bool { return r.LostLate }

// Analyze judges a phase from the prober's records and the observer's
// capture (every advert of the pair's VRID).
func Analyze(ph Phase, pr *Prober, ads []netlab.VRRPAdvert) PhaseResult {
	r := PhaseResult{Phase: ph}
	pings := pr.Pings(ph.From, ph.To)
	r.Outage = Outage(pings, ph.To)
	r.Lost = Lost(pings)
	if pr.port != 0 {
		r.TCPOutage = Outage(pr.TCP(ph.From, ph.To), ph.To)
		r.TCPBreaks = pr.TCPBreaks(ph.From, ph.To)
	}
	r.Settled = Settled(ads, ph.Pair.VRID, ph.From, ph.To)
	r.Reached, r.ReachedOK = ReachedAfter(pings, r.Settled)
	r.LostLate = LostAfter(pings, r.Settled.Add(ph.Pair.Interval))
	return r
}

// Settled finds when the election of vrid settled within [from, to): the
// first advert of the last advertiser after the last advert of any other
// router, looking back one second before from (the Active at the time of
// the fault may have fallen silent right at from); from when the last
// advertiser was alone.
func Settled(ads []netlab.VRRPAdvert, vrid int, from, to time.Time) time.Time {
	var w []netlab.VRRPAdvert
	for _, a := range ads {
		if a.VRID == vrid && !a.Time.Before(from.Add(-time.Second)) && a.Time.Before(to) {
			w = append(w, a)
		}
	}
	settled := settledIn(w)
	if settled.Before(from) {
		return from
	}
	return settled
}

func settledIn(w []netlab.VRRPAdvert) time.Time {
	final := ""
	for i := len(w) - 1; i >= 0; i-- {
		if w[i].Priority > 0 {
			final = w[i].Src
			break
		}
	}
	lastOther := -1
	for i, a := range w {
		if a.Src != final {
			lastOther = i
		}
	}
	if lastOther < 0 {
		return time.Time{}
	}
	for _, a := range w[lastOther+1:] {
		if a.Src == final {
			return a.Time
		}
	}
	return w[lastOther].Time
}

// String is one line for logs.
func (r PhaseResult) String() string {
	reached := "never"
	if r.ReachedOK {
		reached = r.Reached.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%s / %s: outage %v (%d lost), TCP outage %v (%d resets), client through %s after the election settled",
		r.Pair.Name, r.Label(), r.Outage.Round(time.Millisecond), r.Lost, r.TCPOutage.Round(time.Millisecond), r.TCPBreaks, reached)
}
