package e2e

import (
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// TestSignalsAtBadMoments: an agent with a virtual-MAC group in strict
// accept mode (so it owns a macvlan and an nftables table besides the
// VIP) is stopped with SIGTERM at a random moment of its life — while it
// reads its plan, while Backup, as it becomes Active, while Active — 20
// times, the last few with a burst of SIGHUPs first. Each time it must
// exit 0 within the handover wait and leave nothing behind: no VIP, no
// macvlan, no table.
func TestSignalsAtBadMoments(t *testing.T) {
	lab := netlab.New(t, "a", "b") // b is planned but never runs
	cl := &Cluster{
		Name:      "edge",
		Directors: []Director{{Node: "a", Priority: 200, Index: 11}, {Node: "b", Priority: 100, Index: 12}},
		Groups: []Group{{Name: "inside-v4", VRID: 51, Iface: "eth0", Family: plan.FamilyIPv4, VIPs: []string{"192.0.2.100/24"},
			Interval: 100 * time.Millisecond, StrictAccept: true, VirtualMAC: true}},
	}
	cl.SetupAddresses(lab)
	a := StartAgent(t, lab, cl.Plan("a"))
	rng := rand.New(rand.NewPCG(7, 7))
	seen := map[string]int{}
	for i := range 20 {
		if i > 0 {
			a.Start(t)
		}
		// The status listener answers once the loop runs; the plan is
		// being prepared then, and the takeover comes ~330 ms later.
		delay := time.Duration(rng.IntN(600)) * time.Millisecond
		if i >= 15 {
			for range 20 {
				a.Proc.Signal(syscall.SIGHUP)
			}
		}
		time.Sleep(delay)
		state := a.State()
		seen[state]++
		if err := a.Proc.Terminate(); err != nil {
			t.Fatal(err)
		}
		if err := a.Proc.Wait(5 * time.Second); err != nil {
			t.Fatalf("run %d (SIGTERM %v after start, state %s): %v\n%s", i, delay, state, err, a.Proc.Log())
		}
		if lab.HasAddr("a", "192.0.2.100/24") {
			t.Errorf("run %d (SIGTERM %v after start, state %s): the VIP stayed", i, delay, state)
		}
		if out := strings.TrimSpace(lab.Run("a", "ip", "-o", "link", "show", "type", "macvlan")); out != "" {
			t.Errorf("run %d (SIGTERM %v after start, state %s): a macvlan stayed: %s", i, delay, state, out)
		}
		if out := lab.Run("a", "nft", "list", "tables"); strings.Contains(out, "mwgc") {
			t.Errorf("run %d (SIGTERM %v after start, state %s): a table stayed: %s", i, delay, state, out)
		}
	}
	// Before the status listener answers: the process has just started.
	// Killed by the signal's default action (before Go's runtime is up)
	// or stopped by the agent, exit 0: both clean, nothing may stay.
	for i := range 6 {
		p := lab.Start("a", AgentBinary(t), "--plan", a.PlanPath, "--listen", StatusPort)
		time.Sleep(time.Duration(i*5) * time.Millisecond)
		if err := p.Terminate(); err != nil {
			t.Fatal(err)
		}
		err := p.Wait(5 * time.Second)
		if err != nil && !strings.Contains(err.Error(), "signal: terminated") {
			t.Errorf("SIGTERM %d ms after exec: %v\n%s", i*5, err, p.Log())
		}
		if lab.HasAddr("a", "192.0.2.100/24") || strings.TrimSpace(lab.Run("a", "ip", "-o", "link", "show", "type", "macvlan")) != "" {
			t.Errorf("SIGTERM %d ms after exec: something stayed:\n%s", i*5, lab.Run("a", "ip", "-br", "addr"))
		}
	}
	// Reloads (systemctl reload) while the agent starts, from its first
	// log line on: it neither dies of them nor stumbles — it becomes
	// Active and stops cleanly.
	for range 3 {
		p := lab.Start("a", AgentBinary(t), "--plan", a.PlanPath, "--listen", StatusPort)
		if !p.WaitLog("status listener", 5*time.Second) {
			t.Fatalf("no first log line:\n%s", p.Log())
		}
		for range 10 {
			p.Signal(syscall.SIGHUP)
			time.Sleep(time.Millisecond)
		}
		if !p.WaitLog(`"to":"Active"`, 3*time.Second) {
			t.Fatalf("not Active after reloads during its start (exited %v):\n%s", p.Exited(), p.Log())
		}
		p.Terminate()
		if err := p.Wait(5 * time.Second); err != nil {
			t.Errorf("SIGTERM after reloads during the start: %v\n%s", err, p.Log())
		}
	}
	t.Logf("states at SIGTERM: %v", seen)
	if seen["Active"] == 0 || seen["Backup"] == 0 {
		t.Errorf("the stops did not fall both while Backup and while Active: %v", seen)
	}
}
