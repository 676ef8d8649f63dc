// Package netlab builds throwaway network labs out of Linux network
// namespaces for tests. It is test support (not a _test package) so that any
// package's tests can import it.
//
// A lab is one namespace per node, each with an "eth0" veth whose other end
// sits on a bridge in a "switch" namespace, plus an "observer" namespace on
// the same bridge where tcpdump captures. Multicast snooping is off on the
// bridge, so multicast (VRRP, neighbour discovery) floods to every port, and
// MAC ageing is 0, so the bridge acts as a hub and the observer sees unicast too.
// Everything the lab creates, including processes started in its namespaces,
// is removed in t.Cleanup, also after a failure or panic.
package netlab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Lab is a set of node namespaces joined by a bridge, plus an observer.
type Lab struct {
	t      testing.TB
	prefix string // "mwgc-<6 hex>", unique per lab
	dir    string // scratch directory for captures, logs, configs
	nodes  []string

	segments map[string]string // segment name -> bridge name
	ports    int               // veth ports on the switch so far
	portOf   map[string]string // "node/ifname" -> its port on the switch

	mu        sync.Mutex
	procs     []*Process
	captures  []*Capture
	namespace []string // created namespaces, for cleanup
}

const (
	switchNode   = "sw"
	observerNode = "obs"
	bridgeName   = "br0"
	nodeIfname   = "eth0"
	mainSegment  = "main"
)

// tools every lab needs; keepalived is checked by the keepalived helpers.
var requiredTools = []string{"ip", "tcpdump", "tshark"}

// Require checks the prerequisites of a namespace test: root and the given
// programs. Without root and outside CI the test is skipped; with CI=true a
// missing prerequisite fails the test loudly, so CI never silently skips.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (euid 0)")
	}
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, "program "+strconv.Quote(p)+" in PATH")
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "netlab: network namespace test needs " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: refusing to skip; run `make deps` and run the tests as root)")
	}
	t.Skip(msg)
}

// New builds a lab with the given node names (short, unique, e.g. "a", "b").
// It skips or fails the test per Require when prerequisites are missing.
func New(t testing.TB, nodes ...string) *Lab {
	t.Helper()
	Require(t, requiredTools...)
	for i, n := range nodes {
		if n == "" || n == switchNode || n == observerNode || strings.ContainsAny(n, "/ \t") {
			t.Fatalf("netlab: bad node name %q (reserved or empty)", n)
		}
		if slices.Contains(nodes[:i], n) {
			t.Fatalf("netlab: node %q given twice", n)
		}
	}
	sweepAbandoned()
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		t.Fatalf("netlab: random suffix: %v", err)
	}
	l := &Lab{
		t:        t,
		prefix:   "mwgc-" + hex.EncodeToString(suffix[:]),
		dir:      t.TempDir(), // registered before our cleanup, so removed after it
		nodes:    slices.Clone(nodes),
		segments: map[string]string{mainSegment: bridgeName},
	}
	t.Cleanup(l.cleanup)
	if err := register(l.prefix); err != nil {
		t.Logf("netlab: cannot record lab ownership (leftovers after a killed test will not be swept): %v", err)
	}

	sw := l.addNamespace(switchNode)
	// The switch and observer never speak: no IPv6 link-locals, no MLD noise.
	l.sysctl(sw, "net.ipv6.conf.all.disable_ipv6", "1")
	l.sysctl(sw, "net.ipv6.conf.default.disable_ipv6", "1")
	l.must("ip", "-n", sw, "link", "add", bridgeName, "type", "bridge",
		"mcast_snooping", "0", "stp_state", "0", "forward_delay", "0", "ageing_time", "0")
	l.must("ip", "-n", sw, "link", "set", bridgeName, "up")

	for _, n := range append([]string{observerNode}, nodes...) {
		ns := l.addNamespace(n)
		l.must("ip", "-n", ns, "link", "set", "lo", "up")
		if n == observerNode {
			l.sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")
			l.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")
		} else {
			// Addresses must be usable at once: no duplicate address detection
			// delay for the link-local or any address added later.
			l.sysctl(ns, "net.ipv6.conf.all.accept_dad", "0")
			l.sysctl(ns, "net.ipv6.conf.default.accept_dad", "0")
		}
		l.attach(n, nodeIfname, bridgeName)
	}
	return l
}

// Dir is the lab's scratch directory (removed at cleanup).
func (l *Lab) Dir() string { return l.dir }

// Nodes returns the node names in the order given to New.
func (l *Lab) Nodes() []string { return slices.Clone(l.nodes) }

// NS returns the namespace name of node.
func (l *Lab) NS(node string) string {
	if node != switchNode && node != observerNode && !slices.Contains(l.nodes, node) {
		l.t.Fatalf("netlab: unknown node %q (have %v)", node, l.nodes)
	}
	return l.prefix + "-" + node
}

// Ifname returns the interface name inside the node namespace.
func (l *Lab) Ifname(node string) string { return nodeIfname }

// AddAddr adds prefix (e.g. "192.0.2.11/24" or "2001:db8::11/64") to the
// node's interface. IPv6 addresses are added without DAD.
func (l *Lab) AddAddr(node string, prefix string) {
	l.t.Helper()
	l.AddAddrDev(node, nodeIfname, prefix)
}

// AddAddrDev adds prefix to interface ifname of node.
func (l *Lab) AddAddrDev(node, ifname, prefix string) {
	l.t.Helper()
	args := []string{"-n", l.NS(node), "addr", "add", prefix, "dev", ifname}
	if strings.Contains(prefix, ":") {
		args = append(args, "nodad")
	}
	l.must("ip", args...)
}

// Command returns a command that runs name inside the node namespace.
// `ip netns exec` execs name, so the command's pid is name's pid.
func (l *Lab) Command(node string, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.NS(node), name}, args...)...)
}

// Run runs a command in the node namespace and returns its combined output;
// it fails the test if the command fails.
func (l *Lab) Run(node string, name string, args ...string) string {
	l.t.Helper()
	out, err := l.Command(node, name, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("netlab: %s %s in %s: %v\n%s", name, strings.Join(args, " "), node, err, out)
	}
	return string(out)
}

// LinkDown sets the node's interface down (the veth peer on the bridge sees
// carrier loss too).
func (l *Lab) LinkDown(node string) {
	l.t.Helper()
	l.SetLink(node, nodeIfname, false)
}

// SetLink sets interface ifname of node up or down.
func (l *Lab) SetLink(node, ifname string, up bool) {
	l.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	l.must("ip", "-n", l.NS(node), "link", "set", ifname, state)
}

// LinkUp sets the node's interface up again.
func (l *Lab) LinkUp(node string) {
	l.t.Helper()
	l.SetLink(node, nodeIfname, true)
}

// Addrs lists the addresses on the node's interface as "addr/len" strings.
func (l *Lab) Addrs(node string) []string {
	l.t.Helper()
	return l.AddrsDev(node, nodeIfname)
}

// AddrsDev lists the addresses on interface ifname of node.
func (l *Lab) AddrsDev(node, ifname string) []string {
	l.t.Helper()
	out := l.mustOutput("ip", "-n", l.NS(node), "-o", "addr", "show", "dev", ifname)
	var addrs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" || f[i] == "inet6" {
				addrs = append(addrs, f[i+1])
			}
		}
	}
	return addrs
}

// HasAddr reports whether the node's interface carries prefix ("192.0.2.100/24").
func (l *Lab) HasAddr(node, prefix string) bool {
	return slices.Contains(l.Addrs(node), prefix)
}

// LinkLocal returns the node's IPv6 link-local address on eth0, waiting
// briefly for the kernel to assign it.
func (l *Lab) LinkLocal(node string) string {
	l.t.Helper()
	return l.LinkLocalDev(node, nodeIfname)
}

// LinkLocalDev is LinkLocal for interface ifname.
func (l *Lab) LinkLocalDev(node, ifname string) string {
	l.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, a := range l.AddrsDev(node, ifname) {
			if strings.HasPrefix(a, "fe80:") {
				return strings.SplitN(a, "/", 2)[0]
			}
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("netlab: no link-local address on %s/%s", node, ifname)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MAC returns the hardware address of the node's interface.
func (l *Lab) MAC(node string) string {
	l.t.Helper()
	return l.MACDev(node, nodeIfname)
}

// MACDev is MAC for interface ifname.
func (l *Lab) MACDev(node, ifname string) string {
	l.t.Helper()
	out := l.mustOutput("ip", "-n", l.NS(node), "-o", "link", "show", "dev", ifname)
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "link/ether" {
			return f[i+1]
		}
	}
	l.t.Fatalf("netlab: no MAC in %q", out)
	return ""
}

// Do runs fn inside the node's network namespace on a locked OS thread, so
// sockets opened and netlink calls made by fn belong to that namespace.
func (l *Lab) Do(node string, fn func() error) error {
	return doInNamespace(l.NS(node), fn)
}

// attach connects a new veth named ifname in node's namespace to bridge.
func (l *Lab) attach(node, ifname, bridge string) {
	l.t.Helper()
	sw, ns := l.prefix+"-"+switchNode, l.prefix+"-"+node
	l.mu.Lock()
	l.ports++
	port := "p" + strconv.Itoa(l.ports)
	if l.portOf == nil {
		l.portOf = map[string]string{}
	}
	l.portOf[node+"/"+ifname] = port
	l.mu.Unlock()
	l.must("ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns)
	l.must("ip", "-n", sw, "link", "set", port, "master", bridge, "up")
	if node != observerNode {
		l.sysctl(ns, "net.ipv6.conf."+ifname+".accept_dad", "0")
	}
	l.must("ip", "-n", ns, "link", "set", ifname, "up")
}

// AddSegment adds another layer-2 segment (a second bridge, also a hub,
// also watched by the observer) for nodes with more than one interface.
// The main segment, holding every node's eth0, is "main".
func (l *Lab) AddSegment(segment string) {
	l.t.Helper()
	if segment == mainSegment || l.segments[segment] != "" || len(segment) > 10 || segment == "" {
		l.t.Fatalf("netlab: bad or duplicate segment name %q", segment)
	}
	bridge := "br-" + segment
	l.must("ip", "-n", l.prefix+"-"+switchNode, "link", "add", bridge, "type", "bridge",
		"mcast_snooping", "0", "stp_state", "0", "forward_delay", "0", "ageing_time", "0")
	l.must("ip", "-n", l.prefix+"-"+switchNode, "link", "set", bridge, "up")
	l.segments[segment] = bridge
	l.attach(observerNode, segment, bridge)
}

// AddInterface gives node another interface named ifname (e.g. "eth1") on
// segment (made with AddSegment, or "main" for eth0's segment).
func (l *Lab) AddInterface(node, ifname, segment string) {
	l.t.Helper()
	l.NS(node) // checks the node name
	bridge := l.segments[segment]
	if bridge == "" {
		l.t.Fatalf("netlab: unknown segment %q", segment)
	}
	l.attach(node, ifname, bridge)
}

func (l *Lab) addNamespace(node string) string {
	l.t.Helper()
	ns := l.prefix + "-" + node
	l.must("ip", "netns", "add", ns)
	l.mu.Lock()
	l.namespace = append(l.namespace, ns)
	l.mu.Unlock()
	return ns
}

func (l *Lab) sysctl(ns, key, value string) {
	l.t.Helper()
	l.must("ip", "netns", "exec", ns, "sysctl", "-q", "-w", key+"="+value)
}

func (l *Lab) must(name string, args ...string) {
	l.t.Helper()
	l.mustOutput(name, args...)
}

func (l *Lab) mustOutput(name string, args ...string) string {
	l.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("netlab: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cleanup stops captures and processes, kills anything else still running in
// the lab's namespaces, and deletes the namespaces. It never fails the test
// for cleanup trouble (it logs), so the real failure stays visible.
func (l *Lab) cleanup() {
	l.mu.Lock()
	procs, captures, namespaces := l.procs, l.captures, l.namespace
	l.procs, l.captures, l.namespace = nil, nil, nil
	l.mu.Unlock()

	for _, c := range captures {
		c.stop()
	}
	for _, p := range procs {
		p.kill(syscall.SIGKILL)
		p.waitQuiet(2 * time.Second)
		if l.t.Failed() {
			l.t.Logf("netlab: log of %s (%s):\n%s", p.name, p.logPath, tail(p.Log(), 4000))
		}
	}
	for _, ns := range namespaces {
		killAllIn(ns)
	}
	// Deleting node namespaces destroys their veth ends and with them the ports.
	for i := len(namespaces) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", namespaces[i]).CombinedOutput(); err != nil {
			l.t.Logf("netlab: cleanup: ip netns del %s: %v %s", namespaces[i], err, out)
		}
	}
	unregister(l.prefix)
}

// killAllIn SIGKILLs every process inside the namespace (children a test
// forgot, keepalived's VRRP child, ...), and waits briefly for them to go.
func killAllIn(ns string) {
	for range 50 {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		for _, s := range pids {
			if pid, err := strconv.Atoi(s); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// Process is a long-running program started in a node namespace with its
// stdout and stderr going to a log file.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // exit error, valid after done is closed
}

// Start starts name in the node namespace with output captured to a log file
// in the lab directory. The process is SIGKILLed at cleanup if still running.
func (l *Lab) Start(node string, name string, args ...string) *Process {
	l.t.Helper()
	logf, err := os.CreateTemp(l.dir, fmt.Sprintf("%s-%s-*.log", node, filepath.Base(name)))
	if err != nil {
		l.t.Fatalf("netlab: log file: %v", err)
	}
	cmd := l.Command(node, name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		l.t.Fatalf("netlab: start %s in %s: %v", name, node, err)
	}
	logf.Close() // the child holds its own copy
	p := &Process{name: node + ":" + filepath.Base(name), cmd: cmd, logPath: logf.Name(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

// Pid is the process id (of the program itself: ip netns exec execs it).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath is the file receiving stdout and stderr.
func (p *Process) LogPath() string { return p.logPath }

// Log returns everything the process has written so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill sends SIGKILL: a crash.
func (p *Process) Kill() error { return p.kill(syscall.SIGKILL) }

// Terminate sends SIGTERM: a graceful stop.
func (p *Process) Terminate() error { return p.kill(syscall.SIGTERM) }

func (p *Process) kill(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	return p.cmd.Process.Signal(sig)
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for exit status 0). It returns an error if it is still running.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("netlab: %s still running after %v", p.name, timeout)
	}
}

// ExitCode is the exit status after the process exited (-1 if killed by a
// signal or still running).
func (p *Process) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *Process) waitQuiet(timeout time.Duration) { _ = p.Wait(timeout) }

// WaitLog waits up to timeout for substr to appear in the process log.
func (p *Process) WaitLog(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if b, _ := os.ReadFile(p.logPath); bytes.Contains(b, []byte(substr)) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
