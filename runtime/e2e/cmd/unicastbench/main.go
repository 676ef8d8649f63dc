// Command unicastbench measures what unicast VRRP costs beside multicast,
// in one network-namespace lab and one run (mirroring failoverbench):
//
//   - crash failover (kill -9 of the Active) and graceful handover
//     (SIGTERM) of an mwgc group sending by unicast beside one sending by
//     multicast, same timers (100 ms adverts, priorities 200 and 100),
//     both authenticated; trials alternate between the two groups. The
//     overhead is the handover time from the capture minus
//     Active_Down_Interval (crash) or Skew_Time (graceful);
//   - the sender's CPU as Active at 10 ms adverts: the multicast group,
//     and a unicast group with 1, 4 and 16 peers (addresses of one sink
//     node, so every copy really leaves), alternating in rounds.
//
// Run as root:
//
//	go run ./runtime/e2e/cmd/unicastbench -trials 20
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/e2e"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrpnet"
)

const (
	interval       = 100 * time.Millisecond
	activePriority = 200
	backupPriority = 100
	multicastVRID  = 61
	unicastVRID    = 63
	multicast      = "multicast"
	unicast        = "unicast"
)

var verbose = flag.Bool("v", false, "print every trial")

type trial struct {
	transport string
	graceful  bool
	from, to  time.Time
}

type result struct {
	crash, graceful map[string][]time.Duration
	cpu             map[string]float64 // fraction of a core, median round
	cpuOrder        []string
	cpuRounds       int
	errors          []string
}

func main() {
	e2e.InitFlags()
	trials := flag.Int("trials", 20, "trials per transport and kind")
	resourceTime := flag.Duration("resource-time", 12*time.Second, "CPU measuring time per configuration at 10 ms adverts (over 3 alternating rounds)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "unicastbench: needs root (network namespaces)")
		os.Exit(2)
	}
	var res *result
	failed := e2e.RunTB(func(tb testing.TB) { res = run(tb, *trials, *resourceTime) })
	if res == nil || failed {
		fmt.Fprintln(os.Stderr, "unicastbench: the run failed (see above)")
		os.Exit(1)
	}
	report(os.Stdout, res, *trials)
}

// sinkAddr is the i-th (0-based) address of the sink node.
func sinkAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(201 + i)}) }

func run(b testing.TB, trials int, resourceTime time.Duration) *result {
	lab := netlab.New(b, "ma", "mb", "ua", "ub", "sink")
	key := lab.Dir() + "/vrrp-1.key"
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i * 7)
	}
	if err := os.WriteFile(key, []byte(fmt.Sprintf("hex:%x\n", k)), 0o600); err != nil {
		b.Fatal(err)
	}
	auth := &plan.Auth{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: key}}, ActiveKey: 1}
	res := &result{crash: map[string][]time.Duration{}, graceful: map[string][]time.Duration{}, cpu: map[string]float64{}}
	cluster := func(name, a, bk string, vrid int, vip string, u *plan.Unicast) *e2e.Cluster {
		idx := map[string]int{"ma": 31, "mb": 32, "ua": 33, "ub": 34}
		return &e2e.Cluster{
			Name:      name,
			Directors: []e2e.Director{{Node: a, Priority: activePriority, Index: idx[a]}, {Node: bk, Priority: backupPriority, Index: idx[bk]}},
			Groups: []e2e.Group{{Name: "bench-v4", VRID: vrid, Iface: "eth0", Family: plan.FamilyIPv4,
				VIPs: []string{vip}, Interval: interval, Unicast: u}},
			Auth: auth,
		}
	}
	mc := cluster("bench-mc", "ma", "mb", multicastVRID, "192.0.2.161/24", nil)
	uc := cluster("bench-uc", "ua", "ub", unicastVRID, "192.0.2.163/24", &plan.Unicast{MinTTL: 255})
	mc.SetupAddresses(lab)
	uc.SetupAddresses(lab)
	// The sink answers ARP for 16 peer addresses and has a VRRP socket, so
	// the copies sent to it are delivered (no ICMP errors come back).
	for i := range 16 {
		lab.AddAddr("sink", netip.PrefixFrom(sinkAddr(i), 24).String())
	}
	if err := lab.Do("sink", func() error {
		c, err := vrrpnet.Listen("eth0", false, sinkAddr(0))
		if err == nil {
			b.Cleanup(func() { c.Close() })
		}
		return err
	}); err != nil {
		b.Fatal(err)
	}
	const (
		ma, mb = "192.0.2.31", "192.0.2.32"
		ua, ub = "192.0.2.33", "192.0.2.34"
	)

	capture := lab.Capture("ip proto 112")
	agents := map[string]*e2e.Agent{}
	for _, n := range []string{"mb", "ub"} {
		c := mc
		if n == "ub" {
			c = uc
		}
		agents[n] = e2e.StartAgent(b, lab, c.Plan(n))
	}
	agents["ma"] = e2e.StartAgent(b, lab, mc.Plan("ma"))
	agents["ua"] = e2e.StartAgent(b, lab, uc.Plan("ua"))
	wait := func(a *e2e.Agent, state string) {
		b.Helper()
		e2e.Eventually(b, 10*time.Second, a.Node+" "+state, func() (bool, string) {
			s := a.State()
			return s == state, s
		})
	}
	for _, n := range []string{"ma", "ua"} {
		wait(agents[n], "Active")
	}
	for _, n := range []string{"mb", "ub"} {
		wait(agents[n], "Backup")
	}
	time.Sleep(300 * time.Millisecond)

	var ts []trial
	settle := func() { time.Sleep(4 * interval) }
	for _, graceful := range []bool{false, true} {
		for range trials {
			for _, tr := range []struct{ transport, active, backup string }{{multicast, "ma", "mb"}, {unicast, "ua", "ub"}} {
				act, bk := agents[tr.active], agents[tr.backup]
				t0 := time.Now()
				if graceful {
					act.Proc.Terminate()
				} else {
					act.Proc.Kill()
				}
				act.Proc.Wait(5 * time.Second)
				wait(bk, "Active")
				ts = append(ts, trial{transport: tr.transport, graceful: graceful, from: t0.Add(-3 * interval), to: time.Now().Add(3 * interval)})
				settle()
				act.Start(b)
				wait(act, "Active")
				wait(bk, "Backup")
				settle()
			}
		}
	}
	ads, err := netlab.DecodeVRRP(capture.Stop())
	if err != nil {
		b.Fatal(err)
	}
	for _, tr := range ts {
		old, new, vrid := ma, mb, multicastVRID
		if tr.transport == unicast {
			old, new, vrid = ua, ub, unicastVRID
		}
		overhead, err := e2e.HandoverOverhead(ads, vrid, old, new, tr.from, tr.to, tr.graceful, backupPriority, interval)
		if err != nil {
			res.errors = append(res.errors, fmt.Sprintf("%s graceful=%v: %v", tr.transport, tr.graceful, err))
			continue
		}
		if *verbose {
			fmt.Fprintf(os.Stderr, "%s graceful=%v %s..%s overhead %v\n", tr.transport, tr.graceful,
				tr.from.Format("15:04:05.000"), tr.to.Format("15:04:05.000"), overhead)
		}
		if tr.graceful {
			res.graceful[tr.transport] = append(res.graceful[tr.transport], overhead)
		} else {
			res.crash[tr.transport] = append(res.crash[tr.transport], overhead)
		}
	}

	// The sender's CPU at 10 ms adverts, each configuration alone as Active.
	for _, a := range agents {
		a.Proc.Terminate()
		a.Proc.Wait(5 * time.Second)
	}
	configs := []struct {
		name  string
		agent *e2e.Agent
		plan  *plan.Plan
	}{{name: "multicast", agent: agents["ma"]}}
	mc.Groups[0].Interval = 10 * time.Millisecond
	configs[0].plan = mc.Plan("ma")
	for _, n := range []int{1, 4, 16} {
		c := cluster("bench-uc", "ua", "ub", unicastVRID, "192.0.2.163/24", &plan.Unicast{MinTTL: 255})
		c.Directors = c.Directors[:1]
		c.Groups[0].Interval = 10 * time.Millisecond
		for i := range n {
			c.External = append(c.External, e2e.ExternalPeer{Name: fmt.Sprintf("peer-%d", i+1), Addr: sinkAddr(i), Priority: 1 + i, Auth: true})
		}
		configs = append(configs, struct {
			name  string
			agent *e2e.Agent
			plan  *plan.Plan
		}{fmt.Sprintf("unicast, %d peer(s)", n), agents["ua"], c.Plan("ua")})
	}
	samples := map[string][]float64{}
	const rounds = 3
	for range rounds {
		for _, cfg := range configs {
			e2e.WritePlan(b, cfg.agent.PlanPath, cfg.plan)
			cfg.agent.Start(b)
			wait(cfg.agent, "Active")
			time.Sleep(time.Second) // past start-up and the announce burst
			share, err := e2e.CPUShare(resourceTime/rounds, cfg.agent.Proc.Pid())
			if err != nil {
				b.Fatal(err)
			}
			samples[cfg.name] = append(samples[cfg.name], share)
			cfg.agent.Proc.Terminate()
			cfg.agent.Proc.Wait(5 * time.Second)
		}
	}
	for _, cfg := range configs {
		xs := samples[cfg.name]
		slices.Sort(xs)
		res.cpu[cfg.name] = xs[len(xs)/2]
		res.cpuOrder = append(res.cpuOrder, cfg.name)
	}
	res.cpuRounds = rounds
	return res
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

func report(w *os.File, r *result, trials int) {
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	spread := func(ds []time.Duration) string {
		if len(ds) == 0 {
			return "-"
		}
		s := slices.Clone(ds)
		slices.Sort(s)
		return fmt.Sprintf("%s..%s", ms(s[0]), ms(s[len(s)-1]))
	}
	fmt.Fprintf(w, "unicastbench: 100 ms adverts, Active priority %d, Backup priority %d, %d trials each, every advert authenticated\n\n", activePriority, backupPriority, trials)
	fmt.Fprintf(w, "| measure | unicast | multicast | ratio |\n|---|---|---|---|\n")
	row := func(name string, x map[string][]time.Duration) {
		fmt.Fprintf(w, "| %s, median (n) | %s (%d) | %s (%d) | %s |\n", name,
			ms(e2e.Median(x[unicast])), len(x[unicast]), ms(e2e.Median(x[multicast])), len(x[multicast]),
			ratio(float64(e2e.Median(x[unicast])), float64(e2e.Median(x[multicast]))))
		fmt.Fprintf(w, "| %s, min..max | %s | %s | |\n", name, spread(x[unicast]), spread(x[multicast]))
	}
	row("crash failover overhead beyond Active_Down_Interval", r.crash)
	row("graceful handover overhead beyond Skew_Time", r.graceful)
	fmt.Fprintf(w, "\nSender CPU as Active at 10 ms adverts (median of %d rounds):\n\n| configuration | CPU | ratio to multicast |\n|---|---|---|\n", r.cpuRounds)
	for _, name := range r.cpuOrder {
		fmt.Fprintf(w, "| %s | %.2f %% of a core | %s |\n", name, 100*r.cpu[name], ratio(r.cpu[name], r.cpu["multicast"]))
	}
	if len(r.errors) > 0 {
		fmt.Fprintf(w, "\n%d trials without a usable measurement:\n  %s\n", len(r.errors), strings.Join(r.errors, "\n  "))
	}
}
