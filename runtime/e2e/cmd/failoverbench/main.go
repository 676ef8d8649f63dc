// Command failoverbench measures mwgc-agent and keepalived side by side in
// one network-namespace lab with the same timers (100 ms adverts, Active
// priority 200, Backup priority 100):
//
//   - crash failover: kill -9 of the Active; the time from its last advert
//     to the Backup's first advert, minus the Backup's Active_Down_Interval;
//   - graceful handover: SIGTERM of the Active; the time from its
//     priority-0 advert to the Backup's first advert, minus Skew_Time;
//   - resident memory (keepalived: parent + VRRP child) and CPU of each as
//     Active at 10 ms adverts.
//
// Times come from the observer's packet capture. With -auth every advert
// is authenticated (keepalived's auth_hmac, one key file for both), and
// keepalived is the 2.4.3 build in ../shared/tools (Debian's 2.2.7 has no
// auth_hmac). Run as root:
//
//	go run ./runtime/e2e/cmd/failoverbench -trials 20
//	go run ./runtime/e2e/cmd/failoverbench -trials 20 -auth
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/e2e"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

const (
	interval       = 100 * time.Millisecond
	activePriority = 200
	backupPriority = 100
	mwgcVRID       = 61
	kaVRID         = 62
)

var (
	verbose  = flag.Bool("v", false, "print every trial")
	withAuth = flag.Bool("auth", false, "authenticate every advert (auth_hmac) and run keepalived 2.4.3")
)

// lastState is the state keepalived entered last, from its log.
func lastState(log string) string {
	i := strings.LastIndex(log, "Entering ")
	if i < 0 {
		return ""
	}
	state, _, _ := strings.Cut(log[i+len("Entering "):], " STATE")
	return state
}

type trial struct {
	impl     string // "mwgc-agent" or "keepalived"
	graceful bool
	from, to time.Time
}

type result struct {
	crash, graceful map[string][]time.Duration
	rss             map[string]int64
	cpu             map[string]float64 // fraction of a core, median round
	cpuRounds       int
	errors          []string
}

func main() {
	e2e.InitFlags()
	trials := flag.Int("trials", 20, "trials per implementation and kind")
	resourceTime := flag.Duration("resource-time", 15*time.Second, "how long to measure CPU at 10 ms adverts (each, over 3 alternating rounds)")
	flag.Parse()
	_ = verbose
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "failoverbench: needs root (network namespaces)")
		os.Exit(2)
	}
	var res *result
	failed := e2e.RunTB(func(tb testing.TB) { res = run(tb, *trials, *resourceTime) })
	if res == nil || failed {
		fmt.Fprintln(os.Stderr, "failoverbench: the run failed (see above)")
		os.Exit(1)
	}
	report(os.Stdout, res, *trials)
}

func run(b testing.TB, trials int, resourceTime time.Duration) *result {
	lab := netlab.New(b, "ma", "mb", "ka", "kb")
	var kbin string
	var kauth *netlab.KeepalivedAuth
	var mauth *plan.Auth
	if *withAuth {
		kbin = netlab.Keepalived243(b)
		key := lab.Dir() + "/vrrp-1.key"
		k := make([]byte, 32)
		for i := range k {
			k[i] = byte(i * 7)
		}
		if err := os.WriteFile(key, []byte(fmt.Sprintf("hex:%x\n", k)), 0o600); err != nil {
			b.Fatal(err)
		}
		kauth = &netlab.KeepalivedAuth{Keys: map[int]string{1: key}, ActiveKey: 1}
		mauth = &plan.Auth{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: key}}, ActiveKey: 1}
	} else {
		netlab.Require(b, "keepalived")
	}
	res := &result{
		crash:    map[string][]time.Duration{},
		graceful: map[string][]time.Duration{},
		rss:      map[string]int64{},
		cpu:      map[string]float64{},
	}
	c := &e2e.Cluster{
		Name: "bench",
		Directors: []e2e.Director{
			{Node: "ma", Priority: activePriority, Index: 31},
			{Node: "mb", Priority: backupPriority, Index: 32},
		},
		Groups: []e2e.Group{{Name: "bench-v4", VRID: mwgcVRID, Iface: "eth0", Family: plan.FamilyIPv4,
			VIPs: []string{"192.0.2.161/24"}, Interval: interval}},
		Auth: mauth,
	}
	c.SetupAddresses(lab)
	lab.AddAddr("ka", "192.0.2.41/24")
	lab.AddAddr("kb", "192.0.2.42/24")
	kcfg := func(prio int, iv time.Duration) netlab.KeepalivedConfig {
		return netlab.KeepalivedConfig{Binary: kbin, Instances: []netlab.KeepalivedInstance{{
			Name: "VI_62", VRID: kaVRID, Priority: prio, AdvertInterval: iv, VIPs: []string{"192.0.2.162/24"},
			AuthHMAC: kauth,
		}}}
	}
	const (
		ma, mb = "192.0.2.31", "192.0.2.32"
		ka, kb = "192.0.2.41", "192.0.2.42"
	)

	capture := lab.Capture("ip proto 112")
	mAgentB := e2e.StartAgent(b, lab, c.Plan("mb"))
	mAgentA := e2e.StartAgent(b, lab, c.Plan("ma"))
	kB := lab.StartKeepalived("kb", kcfg(backupPriority, interval))
	kA := lab.StartKeepalived("ka", kcfg(activePriority, interval))

	waitMwgc := func(a *e2e.Agent, state string) {
		b.Helper()
		e2e.Eventually(b, 10*time.Second, a.Node+" "+state, func() (bool, string) {
			s := a.State()
			return s == state, s
		})
	}
	count := func(k *netlab.Keepalived, state string) int {
		return strings.Count(k.Log(), "(VI_62) Entering "+state+" STATE")
	}
	waitK := func(k *netlab.Keepalived, state string, n int) {
		b.Helper()
		if !k.WaitState("VI_62", state, n, 10*time.Second) {
			b.Fatalf("keepalived did not enter %s (%d):\n%s", state, n, k.Log())
		}
	}
	waitMwgc(mAgentA, "Active")
	waitMwgc(mAgentB, "Backup")
	waitK(kA, "MASTER", 1)
	e2e.Eventually(b, 5*time.Second, "kb BACKUP", func() (bool, string) {
		return strings.HasSuffix(lastState(kB.Log()), "BACKUP"), lastState(kB.Log())
	})
	time.Sleep(300 * time.Millisecond)

	var ts []trial
	settle := func() { time.Sleep(4 * interval) }
	for _, graceful := range []bool{false, true} {
		for i := range trials {
			_ = i
			// mwgc-agent
			t0 := time.Now()
			if graceful {
				mAgentA.Proc.Terminate()
			} else {
				mAgentA.Proc.Kill()
			}
			mAgentA.Proc.Wait(5 * time.Second)
			waitMwgc(mAgentB, "Active")
			ts = append(ts, trial{impl: "mwgc-agent", graceful: graceful, from: t0.Add(-3 * interval), to: time.Now().Add(3 * interval)})
			settle()
			mAgentA.Start(b)
			waitMwgc(mAgentA, "Active")
			waitMwgc(mAgentB, "Backup")
			settle()

			// keepalived
			kbMasters := count(kB, "MASTER")
			t0 = time.Now()
			if graceful {
				kA.Stop()
			} else {
				kA.Kill()
			}
			waitK(kB, "MASTER", kbMasters+1)
			ts = append(ts, trial{impl: "keepalived", graceful: graceful, from: t0.Add(-3 * interval), to: time.Now().Add(3 * interval)})
			settle()
			kbBackups := count(kB, "BACKUP")
			kA = lab.StartKeepalived("ka", kcfg(activePriority, interval))
			waitK(kA, "MASTER", 1)
			waitK(kB, "BACKUP", kbBackups+1)
			settle()
		}
	}
	pcap := capture.Stop()
	ads, err := netlab.DecodeVRRP(pcap)
	if err != nil {
		b.Fatal(err)
	}
	for _, tr := range ts {
		old, new, vrid := ma, mb, mwgcVRID
		if tr.impl == "keepalived" {
			old, new, vrid = ka, kb, kaVRID
		}
		overhead, err := e2e.HandoverOverhead(ads, vrid, old, new, tr.from, tr.to, tr.graceful, backupPriority, interval)
		if err != nil {
			res.errors = append(res.errors, fmt.Sprintf("%s graceful=%v: %v", tr.impl, tr.graceful, err))
			continue
		}
		if *verbose {
			fmt.Fprintf(os.Stderr, "%s graceful=%v %s..%s overhead %v\n", tr.impl, tr.graceful,
				tr.from.Format("15:04:05.000"), tr.to.Format("15:04:05.000"), overhead)
		}
		if tr.graceful {
			res.graceful[tr.impl] = append(res.graceful[tr.impl], overhead)
		} else {
			res.crash[tr.impl] = append(res.crash[tr.impl], overhead)
		}
	}

	// Resources as Active at 10 ms adverts, each alone in the lab, so
	// neither pays for receiving the other's adverts.
	mAgentB.Proc.Terminate()
	mAgentB.Proc.Wait(5 * time.Second)
	kB.Stop()
	kA.Stop()
	c.Groups[0].Interval = 10 * time.Millisecond
	e2e.WritePlan(b, mAgentA.PlanPath, c.Plan("ma"))
	mAgentA.Proc.Terminate()
	mAgentA.Proc.Wait(5 * time.Second)
	// Other work on the machine comes and goes: alternate the two in
	// rounds and take the median round of each.
	samples := map[string][]float64{}
	measure := func(impl string, d time.Duration, pids ...int) {
		time.Sleep(time.Second) // past start-up allocations and the announce burst
		share, err := e2e.CPUShare(d, pids...)
		if err != nil {
			b.Fatal(err)
		}
		var rss int64
		for _, p := range pids {
			r, err := e2e.RSS(p)
			if err != nil {
				b.Fatal(err)
			}
			rss += r
		}
		samples[impl] = append(samples[impl], share)
		res.rss[impl] = max(res.rss[impl], rss)
	}
	const rounds = 3
	for range rounds {
		mAgentA.Start(b)
		waitMwgc(mAgentA, "Active")
		measure("mwgc-agent", resourceTime/rounds, mAgentA.Proc.Pid())
		mAgentA.Proc.Terminate()
		mAgentA.Proc.Wait(5 * time.Second)

		kA = lab.StartKeepalived("ka", kcfg(activePriority, 10*time.Millisecond))
		waitK(kA, "MASTER", 1)
		kChild, err := kA.ChildPid()
		if err != nil {
			b.Fatal(err)
		}
		measure("keepalived", resourceTime/rounds, kA.Parent().Pid(), kChild)
		kA.Stop()
	}
	for impl, xs := range samples {
		slices.Sort(xs)
		res.cpu[impl] = xs[len(xs)/2]
	}
	res.cpuRounds = rounds
	return res
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

func report(w *os.File, r *result, trials int) {
	const m, k = "mwgc-agent", "keepalived"
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
	kind := "no authentication, keepalived in PATH"
	if *withAuth {
		kind = "every advert authenticated (auth_hmac), keepalived 2.4.3"
	}
	fmt.Fprintf(w, "failoverbench: 100 ms adverts, Active priority %d, Backup priority %d, %d trials each; %s\n\n", activePriority, backupPriority, trials, kind)
	fmt.Fprintf(w, "| measure | %s | %s | ratio |\n|---|---|---|---|\n", m, k)
	row := func(name string, x map[string][]time.Duration) {
		fmt.Fprintf(w, "| %s, median (n) | %s (%d) | %s (%d) | %s |\n", name,
			ms(e2e.Median(x[m])), len(x[m]), ms(e2e.Median(x[k])), len(x[k]),
			ratio(float64(e2e.Median(x[m])), float64(e2e.Median(x[k]))))
		fmt.Fprintf(w, "| %s, min..max | %s | %s | |\n", name, spread(x[m]), spread(x[k]))
	}
	row("crash failover overhead beyond Active_Down_Interval", r.crash)
	row("graceful handover overhead beyond Skew_Time", r.graceful)
	fmt.Fprintf(w, "| resident memory as Active, 10 ms adverts (largest) | %.1f MB | %.1f MB (parent+child) | %s |\n",
		float64(r.rss[m])/1e6, float64(r.rss[k])/1e6, ratio(float64(r.rss[m]), float64(r.rss[k])))
	fmt.Fprintf(w, "| CPU as Active, 10 ms adverts, each alone (median of %d rounds) | %.2f %% of a core | %.2f %% of a core | %s |\n",
		r.cpuRounds, 100*r.cpu[m], 100*r.cpu[k], ratio(r.cpu[m], r.cpu[k]))
	if len(r.errors) > 0 {
		fmt.Fprintf(w, "\n%d trials without a usable measurement:\n  %s\n", len(r.errors), strings.Join(r.errors, "\n  "))
	}
}
