package netlab

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLabConnectsNodesAndCaptures(t *testing.T) {
	l := New(t, "a", "b")
	l.AddAddr("a", "192.0.2.1/24")
	l.AddAddr("b", "192.0.2.2/24")
	l.AddAddr("a", "2001:db8::1/64")
	l.AddAddr("b", "2001:db8::2/64")
	if !l.HasAddr("a", "192.0.2.1/24") || !l.HasAddr("b", "2001:db8::2/64") {
		t.Fatalf("addresses missing: a=%v b=%v", l.Addrs("a"), l.Addrs("b"))
	}
	c := l.Capture("udp port 9999")
	if err := udpExchange(l, "a", "b", "192.0.2.2", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := udpExchange(l, "b", "a", "2001:db8::1", time.Second); err != nil {
		t.Fatal(err)
	}
	pcap := c.Stop()
	rows, err := Decode(pcap, "udp.dstport == 9999", "ip.src", "ipv6.src")
	if err != nil {
		t.Fatal(err)
	}
	var srcs []string
	for _, r := range rows {
		if s := first(r...); !slices.Contains(srcs, s) {
			srcs = append(srcs, s)
		}
	}
	got := strings.Join(srcs, " ")
	if got != "192.0.2.1 2001:db8::2" {
		t.Errorf("observer saw echo requests from %q, want %q", got, "192.0.2.1 2001:db8::2")
	}
	if ll := l.LinkLocal("a"); !strings.HasPrefix(ll, "fe80:") {
		t.Errorf("LinkLocal = %q", ll)
	}
	if mac := l.MAC("a"); len(mac) != 17 {
		t.Errorf("MAC = %q", mac)
	}
}

func TestLinkDownBreaksConnectivity(t *testing.T) {
	l := New(t, "a", "b")
	l.AddAddr("a", "192.0.2.1/24")
	l.AddAddr("b", "192.0.2.2/24")
	l.LinkDown("b")
	if err := udpExchange(l, "a", "b", "192.0.2.2", 300*time.Millisecond); err == nil {
		t.Fatal("datagram arrived with b's link down")
	}
	l.LinkUp("b")
	if err := udpExchange(l, "a", "b", "192.0.2.2", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestCleanupRemovesNamespacesAndProcesses(t *testing.T) {
	var ns []string
	var pid int
	t.Run("lab", func(t *testing.T) {
		l := New(t, "a")
		ns = []string{l.NS("a"), l.prefix + "-sw", l.prefix + "-obs"}
		p := l.Start("a", "sleep", "300")
		pid = p.Pid()
		l.Capture("")
	})
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if strings.Contains(string(out), n) {
			t.Errorf("namespace %s still exists after cleanup", n)
		}
	}
	if err := exec.Command("kill", "-0", itoa(pid)).Run(); err == nil {
		t.Errorf("process %d still alive after cleanup", pid)
	}
}

func TestProcessLogAndSignals(t *testing.T) {
	l := New(t, "a")
	p := l.Start("a", "sh", "-c", `trap 'echo got-term; exit 3' TERM; echo ready; ip -o link show eth0; while :; do sleep 0.05; done`)
	if !p.WaitLog("ready", 5e9) {
		t.Fatalf("no ready line: %q", p.Log())
	}
	if !p.WaitLog("eth0", 5e9) {
		t.Fatalf("process does not see eth0 of its namespace: %q", p.Log())
	}
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	_ = p.Wait(5e9)
	if p.ExitCode() != 3 || !strings.Contains(p.Log(), "got-term") {
		t.Errorf("exit code %d, log %q; want 3 and got-term", p.ExitCode(), p.Log())
	}
}
func itoa(n int) string { return strconv.Itoa(n) }

// udpExchange sends one datagram from node from to addr (on node to) and
// reports whether it arrived within timeout.
func udpExchange(l *Lab, from, to, addr string, timeout time.Duration) error {
	var rx net.PacketConn
	if err := l.Do(to, func() (err error) {
		rx, err = net.ListenPacket("udp", net.JoinHostPort(addr, "9999"))
		return err
	}); err != nil {
		return err
	}
	defer rx.Close()
	var tx net.Conn
	if err := l.Do(from, func() (err error) {
		tx, err = net.Dial("udp", net.JoinHostPort(addr, "9999"))
		return err
	}); err != nil {
		return err
	}
	defer tx.Close()
	deadline := time.Now().Add(timeout)
	_ = rx.SetReadDeadline(deadline)
	buf := make([]byte, 64)
	for {
		// Resend: the first datagram may wait on neighbour resolution.
		_, _ = tx.Write([]byte("hello"))
		_ = rx.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := rx.ReadFrom(buf)
		if err == nil && string(buf[:n]) == "hello" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no datagram from %s to %s (%s) within %v", from, to, addr, timeout)
		}
	}
}

func TestSecondSegment(t *testing.T) {
	l := New(t, "a", "b")
	l.AddSegment("s1")
	l.AddInterface("a", "eth1", "s1")
	l.AddInterface("b", "eth1", "s1")
	l.AddAddrDev("a", "eth1", "198.51.100.1/24")
	l.AddAddrDev("b", "eth1", "198.51.100.2/24")
	if ll := l.LinkLocalDev("a", "eth1"); ll == l.LinkLocal("a") || l.MACDev("a", "eth1") == l.MAC("a") {
		t.Errorf("eth1 and eth0 of a share addresses: %s", ll)
	}
	main := l.Capture("udp port 9999")
	seg := l.CaptureOn("s1", "udp port 9999")
	if err := udpExchange(l, "a", "b", "198.51.100.2", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	l.SetLink("b", "eth1", false)
	if err := udpExchange(l, "a", "b", "198.51.100.2", 300*time.Millisecond); err == nil {
		t.Error("datagram crossed s1 with b's eth1 down")
	}
	for name, c := range map[string]*Capture{"main": main, "s1": seg} {
		rows, err := Decode(c.Stop(), "", "ip.src")
		if err != nil {
			t.Fatal(err)
		}
		if name == "main" && len(rows) != 0 {
			t.Errorf("main segment saw %d datagrams of segment s1", len(rows))
		}
		if name == "s1" && len(rows) == 0 {
			t.Error("observer on s1 saw nothing")
		}
	}
}

// A tcpdump that falls behind (here: stopped for 400 ms, as on a loaded
// machine) still writes every packet sent before Stop, and the end marker
// Stop uses is invisible to the decoders.
func TestCaptureStopWaitsForLaggingTcpdump(t *testing.T) {
	l := New(t, "a", "b")
	l.AddAddr("a", "192.0.2.1/24")
	l.AddAddr("b", "192.0.2.2/24")
	c := l.Capture("udp port 9999")
	if err := syscall.Kill(c.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(400 * time.Millisecond)
		_ = syscall.Kill(c.cmd.Process.Pid, syscall.SIGCONT)
	}()
	if err := udpExchange(l, "a", "b", "192.0.2.2", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	pcap := c.Stop()
	rows, err := Decode(pcap, "", "eth.type", "ip.src")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("datagram sent before Stop missing from the capture")
	}
	for _, r := range rows {
		if r[1] != "192.0.2.1" {
			t.Errorf("unexpected frame in decoded capture: %v", r)
		}
	}
	out, err := exec.Command("tcpdump", "-r", pcap, "-n", "ether proto 0x88b5").CombinedOutput()
	if err != nil || strings.Count(string(out), "\n") < 2 {
		t.Errorf("end marker not in the pcap file: %v\n%s", err, out)
	}
}

// A lab whose test binary was killed (no t.Cleanup) is removed by the next
// lab created on the machine.
func TestAbandonedLabIsSwept(t *testing.T) {
	Require(t, requiredTools...)
	// Play a killed test binary: a process that registers a lab with a
	// namespace and a process in it, then dies without cleaning up.
	prefix := "mwgc-dead00"
	ns := prefix + "-a"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	sleeper := exec.Command("ip", "netns", "exec", ns, "sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	// Start returns before `ip netns exec` has joined the namespace; on a
	// loaded machine the sweep would otherwise look before the sleeper is in.
	inside := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out, _ := exec.Command("ip", "netns", "pids", ns).Output(); strings.TrimSpace(string(out)) != "" {
			inside = true
			break
		}
	}
	if !inside {
		t.Fatal("the sleeper never entered the namespace")
	}
	if err := os.MkdirAll(registryDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// pid 1's start time never matches a made-up one: the owner is "gone".
	if err := os.WriteFile(filepath.Join(registryDir, prefix), []byte("1 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	New(t, "x")

	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), ns) {
		t.Errorf("abandoned namespace %s not swept", ns)
	}
	if _, err := os.Stat(filepath.Join(registryDir, prefix)); err == nil {
		t.Error("registry entry of the abandoned lab still there")
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("process in the abandoned namespace still running")
	}
}

// Two isolated nodes cannot reach each other but still reach a third;
// un-isolating heals the split.
func TestIsolate(t *testing.T) {
	l := New(t, "a", "b", "c")
	for i, n := range []string{"a", "b", "c"} {
		l.AddAddr(n, fmt.Sprintf("192.0.2.%d/24", i+1))
	}
	reaches := func(from, to string) bool {
		t.Helper()
		var got bool
		var ln net.PacketConn
		if err := l.Do(to, func() (err error) { ln, err = net.ListenPacket("udp4", ":9999"); return err }); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addr := map[string]string{"a": "192.0.2.1", "b": "192.0.2.2", "c": "192.0.2.3"}[to]
		if err := l.Do(from, func() error {
			c, err := net.Dial("udp4", addr+":9999")
			if err != nil {
				return err
			}
			defer c.Close()
			for range 3 {
				c.Write([]byte("x"))
				time.Sleep(30 * time.Millisecond)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		ln.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, _, err := ln.ReadFrom(make([]byte, 8)); err == nil {
			got = true
		}
		return got
	}
	l.Isolate("a", true)
	l.Isolate("b", true)
	if reaches("a", "b") || reaches("b", "a") {
		t.Error("isolated nodes reach each other")
	}
	if !reaches("a", "c") || !reaches("c", "b") {
		t.Error("an isolated node lost the rest of the segment")
	}
	l.Isolate("a", false)
	l.Isolate("b", false)
	if !reaches("a", "b") {
		t.Error("not healed")
	}
	l.LearnMACs(300)
	if out := l.mustOutput("ip", "-d", "-n", l.NS("sw"), "link", "show", "br0"); !strings.Contains(out, "ageing_time 30000") {
		t.Errorf("bridge does not learn:\n%s", out)
	}
}
