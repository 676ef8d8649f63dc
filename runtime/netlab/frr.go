package netlab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// FRR's daemons (Debian's frr package) live outside PATH.
const (
	frrZebra = "/usr/lib/frr/zebra"
	frrVRRPd = "/usr/lib/frr/vrrpd"
)

// FRRInstance is one IPv4 VRRPv3 virtual router for FRR's vrrpd on a
// node's eth0.
type FRRInstance struct {
	VRID           int
	Priority       int
	AdvertInterval time.Duration // whole centiseconds; default 1s
	VIPs           []string      // IPv4 with prefix length, e.g. "192.0.2.100/24"
	NoPreempt      bool
}

// FRR is zebra and vrrpd running in a lab node.
type FRR struct {
	Zebra, VRRPd *Process
	// Macvlan is the interface FRR's virtual router runs on: FRR does not
	// create it; StartFRR does, as FRR's manual says (bridge mode, the
	// virtual MAC, the VIPs on it, addrgenmode random).
	Macvlan string
	dir     string
}

// StartFRR creates the macvlan FRR needs for the instance and starts zebra
// and vrrpd (as user frr, whose group may use the vty) in node. The
// daemons' files live in a directory of their own under the system's temp
// directory (the frr user cannot enter the test's), removed at cleanup.
func (l *Lab) StartFRR(node string, in FRRInstance) *FRR {
	l.t.Helper()
	for _, p := range []string{frrZebra, frrVRRPd} {
		if _, err := os.Stat(p); err != nil {
			msg := "netlab: FRR needs " + p + " (apt-get install frr)"
			if os.Getenv("CI") == "true" {
				l.t.Fatal(msg)
			}
			l.t.Skip(msg)
		}
	}
	if in.AdvertInterval == 0 {
		in.AdvertInterval = time.Second
	}
	f := &FRR{Macvlan: fmt.Sprintf("vrrp4-2-%d", in.VRID)}
	ns := l.NS(node)
	l.must("ip", "-n", ns, "link", "add", f.Macvlan, "link", nodeIfname, "address", fmt.Sprintf("00:00:5e:00:01:%02x", in.VRID), "type", "macvlan", "mode", "bridge")
	l.must("ip", "-n", ns, "link", "set", f.Macvlan, "addrgenmode", "random")
	var conf strings.Builder
	fmt.Fprintf(&conf, "hostname %s\ninterface %s\n vrrp %d version 3\n vrrp %d priority %d\n vrrp %d advertisement-interval %d\n",
		node, nodeIfname, in.VRID, in.VRID, in.Priority, in.VRID, in.AdvertInterval.Milliseconds())
	if in.NoPreempt {
		fmt.Fprintf(&conf, " no vrrp %d preempt\n", in.VRID)
	}
	for _, v := range in.VIPs {
		p, err := netip.ParsePrefix(v)
		if err != nil || !p.Addr().Is4() {
			l.t.Fatalf("netlab: FRR VIP %q is not an IPv4 prefix", v)
		}
		l.must("ip", "-n", ns, "addr", "add", v, "dev", f.Macvlan)
		fmt.Fprintf(&conf, " vrrp %d ip %s\n", in.VRID, p.Addr())
	}
	l.must("ip", "-n", ns, "link", "set", f.Macvlan, "up")

	dir, err := os.MkdirTemp("", "mwgc-frr-")
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	l.t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	f.dir = dir
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			l.t.Fatalf("netlab: %v", err)
		}
		return path
	}
	zconf := write("zebra.conf", "hostname "+node+"\n")
	vconf := write("vrrpd.conf", conf.String())
	zsock := filepath.Join(dir, "zserv.api")
	common := []string{"-z", zsock, "--vty_socket", dir, "-u", "frr", "-g", "frr", "-P", "0", "--log", "stdout", "--log-level", "info"}
	f.Zebra = l.Start(node, frrZebra, append([]string{"-f", zconf, "-i", filepath.Join(dir, "zebra.pid")}, common...)...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(zsock); err == nil {
			break
		}
		if f.Zebra.Exited() || time.Now().After(deadline) {
			l.t.Fatalf("netlab: zebra did not start in %s:\n%s", node, tail(f.Zebra.Log(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.VRRPd = l.Start(node, frrVRRPd, append([]string{"-f", vconf, "-i", filepath.Join(dir, "vrrpd.pid")}, common...)...)
	return f
}

// Log is what vrrpd logged so far.
func (f *FRR) Log() string { return f.VRRPd.Log() }

// Stop ends vrrpd (SIGTERM; FRR then sends priority 0 and steps down) and
// zebra.
func (f *FRR) Stop() {
	f.VRRPd.Terminate()
	f.VRRPd.Wait(10 * time.Second)
	f.Zebra.Terminate()
	f.Zebra.Wait(10 * time.Second)
}

// Kill crashes vrrpd (SIGKILL): adverts stop at once.
func (f *FRR) Kill() { f.VRRPd.Signal(syscall.SIGKILL); f.VRRPd.Wait(5 * time.Second) }

// WaitState waits until vrrpd logs the n-th (n >= 1) transition to state
// ("Master" or "Backup") of its IPv4 router.
func (f *FRR) WaitState(state string, n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if f.count(state) >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *FRR) count(state string) int {
	n := 0
	for _, line := range strings.Split(f.Log(), "\n") {
		if strings.Contains(line, "[IPv4]") && strings.Contains(line, "-> "+state) {
			n++
		}
	}
	return n
}
