// Command clientbench measures failover as a client feels it: mwgc-agent
// (with the interface's MAC and with a virtual MAC) and keepalived (without
// and with use_vmac, each mwgc column's control) side by side in one lab, each a pair of directors (priority 200 and 100, 100 ms
// adverts) on a bridge that learns MACs like a switch. One client
// namespace pings each pair's VIP every 10 ms and keeps a TCP connection to
// it, while the Active fails in six ways: kill -9, SIGTERM, link down, a
// 3 s partition between the directors and heal, SIGSTOP 2 s then SIGCONT,
// kill -9 then restart after 0.2 s. Kill, SIGTERM and link down are
// followed by the return of the first Active, measured as its own phase.
//
// For every phase: the client's outage (the longest run of lost or late
// pings, from the first such ping to the next answer), the TCP outage and
// resets, and when the client got through again after the election
// settled (from the observer's capture). Prints Markdown tables. Run as
// root:
//
//	go run ./runtime/e2e/cmd/clientbench -trials 10
package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/e2e"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// The implementations side by side, and the control each mwgc column is
// judged against: keepalived in the same MAC mode.
const (
	mwgcIface = "mwgc (interface MAC)"
	mwgcVMAC  = "mwgc (virtual MAC)"
	kaIface   = "keepalived 2.2.7"
	kaVMAC    = "keepalived 2.2.7 (use_vmac)"
)

var controls = map[string]string{mwgcIface: kaIface, mwgcVMAC: kaVMAC}

const (
	interval = 100 * time.Millisecond
	period   = 10 * time.Millisecond
	echoPort = 7007
)

func main() {
	e2e.InitFlags()
	trials := flag.Int("trials", 10, "trials per implementation and fault kind")
	verbose := flag.Bool("v", false, "print every phase")
	only := flag.String("kinds", "", "comma-separated fault kinds to run (default: all)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "clientbench: needs root (network namespaces)")
		os.Exit(2)
	}
	kinds := e2e.FaultKinds
	if *only != "" {
		kinds = nil
		for _, k := range strings.Split(*only, ",") {
			kinds = append(kinds, e2e.FaultKind(strings.TrimSpace(k)))
		}
	}
	var results []e2e.PhaseResult
	var pairs []string
	start := time.Now()
	failed := e2e.RunTB(func(tb testing.TB) {
		results, pairs = run(tb, *trials, kinds)
	})
	if failed || results == nil {
		fmt.Fprintln(os.Stderr, "clientbench: the run failed (see above)")
		os.Exit(1)
	}
	if *verbose {
		for _, r := range results {
			fmt.Fprintln(os.Stderr, r)
		}
	}
	report(os.Stdout, results, pairs, *trials, time.Since(start))
}

func run(tb testing.TB, trials int, kinds []e2e.FaultKind) ([]e2e.PhaseResult, []string) {
	netlab.Require(tb, "keepalived")
	lab := netlab.New(tb, "ma", "mb", "va", "vb", "ka", "kb", "wa", "wb", "cl")
	lab.LearnMACs(300)
	vip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	mwgcCluster := func(name, a, b string, ia, ib, vrid int, vmac bool) *e2e.Cluster {
		return &e2e.Cluster{Name: name,
			Directors: []e2e.Director{{Node: a, Priority: 200, Index: ia}, {Node: b, Priority: 100, Index: ib}},
			Groups: []e2e.Group{{Name: "lan", VRID: vrid, Iface: "eth0", Family: plan.FamilyIPv4,
				VIPs: []string{vip(100+vrid).String() + "/24"}, Interval: interval, VirtualMAC: vmac}},
		}
	}
	cm := mwgcCluster("bench-m", "ma", "mb", 31, 32, 71, false)
	cv := mwgcCluster("bench-v", "va", "vb", 33, 34, 72, true)
	cm.SetupAddresses(lab)
	cv.SetupAddresses(lab)
	lab.AddAddr("ka", "192.0.2.41/24")
	lab.AddAddr("kb", "192.0.2.42/24")
	lab.AddAddr("wa", "192.0.2.43/24")
	lab.AddAddr("wb", "192.0.2.44/24")
	lab.AddAddr("cl", "192.0.2.50/24")
	directors := []string{"ma", "mb", "va", "vb", "ka", "kb", "wa", "wb"}
	for _, n := range directors {
		e2e.StartEchoServer(tb, lab, n, echoPort)
	}
	vips := []netip.Addr{vip(171), vip(172), vip(173), vip(174)}
	holders := e2e.StartHolders(tb, lab, directors, vips, 10*time.Millisecond)
	capture := lab.Capture("ip proto 112")

	start := func(c *e2e.Cluster, a, b string) (*e2e.Agent, *e2e.Agent) {
		ab := e2e.StartAgent(tb, lab, c.Plan(b))
		aa := e2e.StartAgent(tb, lab, c.Plan(a))
		return aa, ab
	}
	ma, mb := start(cm, "ma", "mb")
	va, vb := start(cv, "va", "vb")
	kcfg := func(vrid, prio int, extra ...string) netlab.KeepalivedConfig {
		return netlab.KeepalivedConfig{Instances: []netlab.KeepalivedInstance{{
			Name: fmt.Sprintf("VI_%d", vrid), VRID: vrid, Priority: prio, AdvertInterval: interval,
			VIPs: []string{vip(100+vrid).String() + "/24"}, Extra: extra,
		}}}
	}
	pairs := []*e2e.Pair{
		e2e.MwgcPair(mwgcIface, ma, mb, 71, vip(171), interval, 100),
		e2e.MwgcPair(mwgcVMAC, va, vb, 72, vip(172), interval, 100),
		e2e.KeepalivedPair(tb, lab, kaIface, "ka", "kb", kcfg(73, 200), kcfg(73, 100), vip(173)),
		// The like-for-like control of mwgc's virtual MAC.
		e2e.KeepalivedPair(tb, lab, kaVMAC, "wa", "wb", kcfg(74, 200, "use_vmac"), kcfg(74, 100, "use_vmac"), vip(174)),
	}
	probers := map[*e2e.Pair]*e2e.Prober{}
	for _, p := range pairs {
		if !holders.WaitSole(p.VIP, p.A, time.Second, 15*time.Second) {
			tb.Fatalf("%s: %s does not hold %v alone:\n%s", p.Name, p.A, p.VIP, holders.String(p.VIP, time.Time{}))
		}
		probers[p] = e2e.StartProber(tb, lab, "cl", p.VIP, period, echoPort)
	}
	time.Sleep(time.Second)

	var phases []e2e.Phase
	for trial := range trials {
		for _, kind := range kinds {
			// Alternate the order, so neither side always runs first.
			order := slices.Clone(pairs)
			if trial%2 == 1 {
				slices.Reverse(order)
			}
			for _, p := range order {
				ph, err := e2e.RunFault(tb, lab, p, holders, kind, e2e.BenchTiming)
				if err != nil {
					tb.Fatal(err)
				}
				phases = append(phases, ph...)
			}
		}
		fmt.Fprintf(os.Stderr, "clientbench: trial %d of %d done\n", trial+1, trials)
	}
	time.Sleep(300 * time.Millisecond)
	for _, pr := range probers {
		pr.Stop()
	}
	ads, err := netlab.DecodeVRRP(capture.Stop())
	if err != nil {
		tb.Fatal(err)
	}
	var results []e2e.PhaseResult
	for _, ph := range phases {
		results = append(results, e2e.Analyze(ph, probers[ph.Pair], ads))
	}
	var names []string
	for _, p := range pairs {
		names = append(names, p.Name)
	}
	return results, names
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }

type key struct{ label, pair string }

func report(w io.Writer, results []e2e.PhaseResult, pairs []string, trials int, took time.Duration) {
	var labels []string
	by := map[key][]e2e.PhaseResult{}
	for _, r := range results {
		k := key{r.Label(), r.Pair.Name}
		if !slices.Contains(labels, k.label) {
			labels = append(labels, k.label)
		}
		by[k] = append(by[k], r)
	}
	col := func(f func(rs []e2e.PhaseResult) string) {
		for _, l := range labels {
			fmt.Fprintf(w, "| %s |", l)
			for _, p := range pairs {
				fmt.Fprintf(w, " %s |", f(by[key{l, p}]))
			}
			fmt.Fprintln(w)
		}
	}
	header := func(title string) {
		fmt.Fprintf(w, "\n%s\n\n| fault |", title)
		for _, p := range pairs {
			fmt.Fprintf(w, " %s |", p)
		}
		fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(pairs)))
	}
	outages := func(rs []e2e.PhaseResult, tcp bool) []time.Duration {
		var ds []time.Duration
		for _, r := range rs {
			if tcp {
				ds = append(ds, r.TCPOutage)
			} else {
				ds = append(ds, r.Outage)
			}
		}
		return ds
	}
	fmt.Fprintf(w, "clientbench: %d trials per fault and implementation, 100 ms adverts, priorities 200/100, pings every 10 ms, a learning bridge; partition %v, SIGSTOP %v, restart %v after kill -9; %s in all\n",
		trials, e2e.BenchTiming.Partition, e2e.BenchTiming.Pause, e2e.BenchTiming.Restart, took.Round(time.Second))
	header("Client outage, ping (ms), median / worst (n)")
	col(func(rs []e2e.PhaseResult) string {
		ds := outages(rs, false)
		return fmt.Sprintf("%s / %s (%d)", ms(e2e.Median(ds)), ms(slices.Max(append(ds, 0))), len(ds))
	})
	header("Client outage, TCP echo (ms), median / worst; connections reset")
	col(func(rs []e2e.PhaseResult) string {
		ds := outages(rs, true)
		resets := 0
		for _, r := range rs {
			resets += r.TCPBreaks
		}
		return fmt.Sprintf("%s / %s; %d", ms(e2e.Median(ds)), ms(slices.Max(append(ds, 0))), resets)
	})
	header("After the election settled: client through again (ms), worst; phases cut off for more than one advert interval")
	col(func(rs []e2e.PhaseResult) string {
		var worst time.Duration
		holes := 0
		for _, r := range rs {
			if r.Blackhole() {
				holes++
			}
			if r.ReachedOK {
				worst = max(worst, r.Reached)
			}
		}
		return fmt.Sprintf("%s; %d of %d", ms(worst), holes, len(rs))
	})
	fmt.Fprintf(w, "\nGoal: mwgc's outage <= keepalived's in the same MAC mode (median and worst) for every fault; no phase cut off after the election settled. Pings go every %v, so outages are known to one probe: \"within one probe\" is a difference smaller than that.\n\n", period)
	for _, l := range labels {
		var verdicts []string
		for _, p := range pairs {
			k, ok := controls[p]
			if !ok {
				continue
			}
			ko := outages(by[key{l, k}], false)
			rs := by[key{l, p}]
			mo := outages(rs, false)
			dMed := e2e.Median(mo) - e2e.Median(ko)
			dWorst := slices.Max(append(mo, 0)) - slices.Max(append(ko, 0))
			holes := slices.ContainsFunc(rs, e2e.PhaseResult.Blackhole)
			verdict := "met"
			switch {
			case holes || dMed >= period || dWorst >= period:
				verdict = "NOT met"
			case dMed > 0 || dWorst > 0:
				verdict = "met within one probe"
			}
			verdicts = append(verdicts, fmt.Sprintf("%s %s", p, verdict))
		}
		fmt.Fprintf(w, "- %s: %s\n", l, strings.Join(verdicts, ", "))
	}
}
