package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// SoakConfig configures RunSoak.
type SoakConfig struct {
	Events   int           // forced failovers in all, shared by the pairs
	Interval time.Duration // advert interval
	Timing   Timing
	Seed     uint64
	// VirtualMAC adds a second pair that runs its group with the virtual
	// MAC; the pairs fail at the same time, each on its own.
	VirtualMAC bool
	// Holdoff, when set, is the plans' re-announcement holdoff (default
	// 1 s). Splits of one pair closer together than the holdoff have their
	// re-announcement held off (the bound against forged adverts), which
	// the observer would count as a blackhole: compressed timings need a
	// shorter one.
	Holdoff time.Duration
}

// SoakReport is what the independent observer counted.
type SoakReport struct {
	Config SoakConfig
	Took   time.Duration
	Events map[FaultKind]int
	Phases []PhaseResult
	// DualHolders lists periods with two VIP holders lasting longer than
	// Active_Down_Interval after their cause was gone; MaxDualExcess is the
	// longest such excess seen (violation or not).
	DualHolders   []string
	MaxDualExcess time.Duration
	// Stale lists VIPs (and macvlans) still on a director after every
	// agent stopped.
	Stale []string
	// Blackholes lists phases in which the client was cut off for more
	// than one advert interval after the election settled.
	Blackholes []PhaseResult
	// ClaimAlarms lists the vip-claim alarms the agents raised (from every
	// agent run's log): no host but the directors announces the VIPs here,
	// so each is a false alarm about a director's own announcements.
	ClaimAlarms []string
}

// OK reports zero violations of every kind.
func (r *SoakReport) OK() bool {
	return len(r.DualHolders) == 0 && len(r.Stale) == 0 && len(r.Blackholes) == 0 && len(r.ClaimAlarms) == 0
}

// RunSoak runs a churn soak: cfg.Events forced failovers of random kinds
// (seeded) on mwgc pairs in one lab, each pair with a client pinging its
// VIP every 10 ms, judged by the observer: who holds the VIPs (address
// listings every 10 ms), the capture of every advert, and the client.
func RunSoak(tb testing.TB, cfg SoakConfig) *SoakReport {
	tb.Helper()
	start := time.Now()
	nodes := []string{"a", "b", "cl"}
	if cfg.VirtualMAC {
		nodes = []string{"a", "b", "c", "d", "cl"}
	}
	lab := netlab.New(tb, nodes...)
	lab.LearnMACs(300)
	lab.AddAddr("cl", "192.0.2.50/24")
	type pairSpec struct {
		name, a, b string
		ia, ib     int
		vrid       int
		vmac       bool
	}
	specs := []pairSpec{{"mwgc (interface MAC)", "a", "b", 21, 22, 81, false}}
	if cfg.VirtualMAC {
		specs = append(specs, pairSpec{"mwgc (virtual MAC)", "c", "d", 23, 24, 82, true})
	}
	var vips []netip.Addr
	var directors []string
	for _, sp := range specs {
		vips = append(vips, netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + sp.vrid)}))
		directors = append(directors, sp.a, sp.b)
	}
	holders := StartHolders(tb, lab, directors, vips, 10*time.Millisecond)
	capture := lab.Capture("ip proto 112")
	var pairs []*Pair
	var agents []*Agent
	probers := map[*Pair]*Prober{}
	for i, sp := range specs {
		c := &Cluster{Name: "soak", Directors: []Director{{Node: sp.a, Priority: 200, Index: sp.ia}, {Node: sp.b, Priority: 100, Index: sp.ib}},
			Groups: []Group{{Name: "lan", VRID: sp.vrid, Iface: "eth0", Family: plan.FamilyIPv4,
				VIPs: []string{vips[i].String() + "/24"}, Interval: cfg.Interval, VirtualMAC: sp.vmac}}}
		if cfg.Holdoff > 0 {
			c.Reannounce = &plan.Reannounce{Count: plan.DefaultReannounce.Count, Holdoff: plan.Duration(cfg.Holdoff)}
		}
		c.SetupAddresses(lab)
		b := StartAgent(tb, lab, c.Plan(sp.b))
		a := StartAgent(tb, lab, c.Plan(sp.a))
		agents = append(agents, a, b)
		p := MwgcPair(sp.name, a, b, sp.vrid, vips[i], cfg.Interval, 100)
		p.Sources = map[string]netip.Addr{sp.a: c.Director(sp.a).Addr4(), sp.b: c.Director(sp.b).Addr4()}
		pairs = append(pairs, p)
		if !holders.WaitSole(p.VIP, p.A, time.Second, 15*time.Second) {
			tb.Fatalf("%s: %s does not hold %v alone:\n%s", p.Name, p.A, p.VIP, holders.String(p.VIP, time.Time{}))
		}
		probers[p] = StartProber(tb, lab, "cl", p.VIP, 10*time.Millisecond, 0)
	}

	report := &SoakReport{Config: cfg, Events: map[FaultKind]int{}}
	var mu sync.Mutex
	var phases []Phase
	var errs []error
	var wg sync.WaitGroup
	for i, p := range pairs {
		share := cfg.Events / len(pairs)
		if i < cfg.Events%len(pairs) {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
			for range share {
				kind := FaultKinds[rng.IntN(len(FaultKinds))]
				ph, err := RunFault(tb, lab, p, holders, kind, cfg.Timing)
				mu.Lock()
				report.Events[kind]++
				phases = append(phases, ph...)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		tb.Error(err)
	}
	end := time.Now()
	time.Sleep(3 * cfg.Interval)

	// Every agent stops (SIGTERM): no VIP and no macvlan may stay behind.
	for _, a := range agents {
		a.Proc.Terminate()
	}
	for _, a := range agents {
		if err := a.Proc.Wait(10 * time.Second); err != nil {
			tb.Errorf("%s: mwgc-agent did not exit: %v", a.Node, err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	for _, v := range vips {
		for _, n := range holders.Now(v) {
			report.Stale = append(report.Stale, fmt.Sprintf("%v on %s", v, n))
		}
	}
	for _, n := range directors {
		if out := lab.Run(n, "ip", "-o", "link", "show", "type", "macvlan"); strings.TrimSpace(out) != "" {
			report.Stale = append(report.Stale, fmt.Sprintf("macvlan on %s: %s", n, strings.TrimSpace(out)))
		}
	}
	for _, pr := range probers {
		pr.Stop()
	}
	ads, err := netlab.DecodeVRRP(capture.Stop())
	if err != nil {
		tb.Fatal(err)
	}
	for _, ph := range phases {
		r := Analyze(ph, probers[ph.Pair], ads)
		report.Phases = append(report.Phases, r)
		if r.Blackhole() {
			report.Blackholes = append(report.Blackholes, r)
		}
	}
	report.checkDualHolders(holders, pairs, phases, ads, start, end)
	report.ClaimAlarms = claimAlarms(tb, lab)
	if n := holders.SampleErrors(); n > 0 {
		tb.Errorf("the observer failed to list addresses %d times", n)
	}
	report.Took = time.Since(start)
	return report
}

// claimAlarms returns the vip-claim alarm lines of every mwgc-agent run
// in the lab (restarted agents leave one log each).
func claimAlarms(tb testing.TB, lab *netlab.Lab) []string {
	logs, err := filepath.Glob(filepath.Join(lab.Dir(), "*-mwgc-agent-*.log"))
	if err != nil || len(logs) == 0 {
		tb.Fatalf("no agent logs in %s: %v", lab.Dir(), err)
	}
	var out []string
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "VIP claimed by another host") {
				out = append(out, filepath.Base(f)+": "+line)
			}
		}
	}
	return out
}

// checkDualHolders finds periods in which both routers of a pair held its
// VIP for longer than Active_Down_Interval after the cause was gone: the
// end of the partition, the crashed agent running again (its status
// answers), the stopped agent running again — its first advert after
// SIGCONT (on a busy host it gets the CPU some time later; until it sends,
// nobody can know it is back).
func (r *SoakReport) checkDualHolders(h *Holders, pairs []*Pair, phases []Phase, ads []netlab.VRRPAdvert, from, to time.Time) {
	slack := 2 * h.Period // the observer's own sampling
	for _, p := range pairs {
		for _, iv := range h.Periods(p.VIP, from, to, func(n []string) bool { return len(n) >= 2 }) {
			gone, during := iv.From, "between faults"
			for _, ph := range phases {
				if ph.Pair == p && !iv.From.Before(ph.From) && iv.From.Before(ph.To) {
					during = ph.Label()
					if ph.CauseGone.After(gone) {
						gone = ph.CauseGone
					}
					if sent := firstAdvertAfter(ads, p.VRID, p.Sources[p.A], gone); ph.Kind == FaultPause && sent.After(gone) {
						gone = sent
					}
				}
			}
			excess := iv.To.Sub(gone)
			r.MaxDualExcess = max(r.MaxDualExcess, excess)
			if excess > p.ActiveDownInterval()+slack {
				r.DualHolders = append(r.DualHolders, fmt.Sprintf("%s, %s: two holders of %v from %s to %s, %v after the cause was gone",
					p.Name, during, p.VIP, iv.From.Format("15:04:05.000"), iv.To.Format("15:04:05.000"), excess.Round(time.Millisecond)))
			}
		}
	}
}

// firstAdvertAfter is the time of src's first advert (priority above 0)
// of vrid at or after t; zero when there is none.
func firstAdvertAfter(ads []netlab.VRRPAdvert, vrid int, src netip.Addr, t time.Time) time.Time {
	for _, a := range ads {
		if a.VRID == vrid && a.Src == src.String() && a.Priority > 0 && !a.Time.Before(t) {
			return a.Time
		}
	}
	return time.Time{}
}

// Print writes the counts.
func (r *SoakReport) Print(w io.Writer) {
	var kinds []string
	for _, k := range FaultKinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, r.Events[k]))
	}
	total := 0
	for _, n := range r.Events {
		total += n
	}
	var outages []time.Duration
	for _, ph := range r.Phases {
		outages = append(outages, ph.Outage)
	}
	slices.Sort(outages)
	worst := time.Duration(0)
	if len(outages) > 0 {
		worst = outages[len(outages)-1]
	}
	fmt.Fprintf(w, "churn soak: %d forced failovers (%s), %v adverts, seed %d, %s\n",
		total, strings.Join(kinds, ", "), r.Config.Interval, r.Config.Seed, r.Took.Round(time.Second))
	fmt.Fprintf(w, "  two VIP holders longer than Active_Down_Interval after the cause was gone: %d (longest excess %v)\n",
		len(r.DualHolders), r.MaxDualExcess.Round(time.Millisecond))
	fmt.Fprintf(w, "  stale VIPs or macvlans after every agent stopped: %d\n", len(r.Stale))
	fmt.Fprintf(w, "  client blackholes after the election settled: %d of %d phases (worst client outage %v)\n",
		len(r.Blackholes), len(r.Phases), worst.Round(time.Millisecond))
	for _, s := range r.DualHolders {
		fmt.Fprintln(w, "   ", s)
	}
	for _, s := range r.Stale {
		fmt.Fprintln(w, "    stale:", s)
	}
	fmt.Fprintf(w, "  vip-claim alarms (false: no host but the directors announces): %d\n", len(r.ClaimAlarms))
	for _, b := range r.Blackholes {
		fmt.Fprintln(w, "    blackhole:", b)
	}
	for _, c := range r.ClaimAlarms {
		fmt.Fprintln(w, "    vip-claim:", c)
	}
}
