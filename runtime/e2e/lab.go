// Package e2e runs mwgc-agent processes in network namespaces (runtime/netlab)
// and checks them from the outside: their /status, the addresses on their
// interfaces, and a packet capture from the observer namespace. The helpers
// here are shared by the tests and by cmd/failoverbench.
package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwgc/mwgc/compiler"
	"github.com/mwgc/mwgc/runtime/agent"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/plan"
)

// StatusPort is where every agent in a lab listens (each namespace has its
// own loopback).
const StatusPort = "127.0.0.1:9792"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// AgentBinary builds cmd/mwgc-agent once per process into a temporary
// directory (removed by RemoveBuilds) and returns its path.
func AgentBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp("", "mwgc-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "mwgc-agent"), "./cmd/mwgc-agent")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/mwgc-agent: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "mwgc-agent")
}

// RemoveBuilds deletes the binaries AgentBinary built.
func RemoveBuilds() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the mwgc module")
	}
	return filepath.Dir(mod), nil
}

// Director is one mwgc node of a test cluster.
type Director struct {
	Node     string // lab node name
	Priority int
	Index    int // host part of its addresses: 192.0.2.<Index>, fe80::<Index>, 198.51.100.<Index>
}

// Addr4 is the director's address on eth0.
func (d Director) Addr4() netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(d.Index)}) }

// Addr4b is the director's address on eth1 (the second segment).
func (d Director) Addr4b() netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(d.Index)}) }

// LinkLocal is the IPv6 advert source the plan gives the director.
func (d Director) LinkLocal() netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("fe80::%x", d.Index))
}

// Group is one VRRP group of a test cluster.
type Group struct {
	Name     string
	VRID     int
	Iface    string // "eth0" or "eth1"
	Family   string // plan.FamilyIPv4 / plan.FamilyIPv6
	VIPs     []string
	Interval time.Duration
	Checksum string // IPv4 only; default pseudo-header
	// StrictAccept runs the group with acceptMode: false (RFC 9568's
	// strict mode: the Active drops packets addressed to the VIPs).
	StrictAccept bool
	// Unicast, when set, sends the group's adverts to each peer instead
	// of the multicast group.
	Unicast *plan.Unicast
	// VirtualMAC runs the group on a macvlan with the RFC 9568 virtual MAC
	// (the compiler names it vmac4-<VRID> / vmac6-<VRID>).
	VirtualMAC bool
}

// ExternalPeer is a non-mwgc router (keepalived) allowed to advertise on
// eth0 for IPv4 groups.
type ExternalPeer struct {
	Name     string
	Addr     netip.Addr
	Priority int
	Auth     bool // signs with the cluster's keys (keepalived 2.4.2+ auth_hmac)
}

// Cluster builds plans for its directors.
type Cluster struct {
	Name      string
	Directors []Director
	Groups    []Group
	External  []ExternalPeer
	Announce  plan.Announce
	// Reannounce, when set, is the cluster's vrrp.announce.reannounce
	// (nil: the schema's default).
	Reannounce *plan.Reannounce
	// Management: the tests that look at the management protocol say so.
	// Every compiled cluster runs it (both modes that run VRRP require it),
	// unauthenticated on eth0 with every director as a member.
	Management        bool
	DiscoveryInterval time.Duration // default 1s
	// Auth, when set, authenticates every group (key files are the
	// test's business); RolloutGrace is the plan's vrrp.rolloutGrace.
	Auth         *plan.Auth
	RolloutGrace time.Duration
}

// Director returns the director on node.
func (c *Cluster) Director(node string) Director {
	for _, d := range c.Directors {
		if d.Node == node {
			return d
		}
	}
	panic("e2e: no director " + node)
}

func (c *Cluster) uses(iface, family string) bool {
	for _, g := range c.Groups {
		if g.Iface == iface && (family == "" || g.Family == family) {
			return true
		}
	}
	return false
}

// source is d's advert source for g.
func source(d Director, g Group) netip.Addr {
	switch {
	case g.Family == plan.FamilyIPv6:
		return d.LinkLocal()
	case g.Iface == "eth1":
		return d.Addr4b()
	}
	return d.Addr4()
}

// Plan is the plan of the director on node, compiled by mwgc's compiler
// from the cluster written as CUE (Cluster.CUE): the end-to-end tests run
// what `mwgc compile` makes. The compiler's findings other than warnings
// and notes are a bug in the test's cluster and panic. Compiled plans are
// kept per CUE text; each call returns a copy the caller may change.
func (c *Cluster) Plan(node string) *plan.Plan {
	src := c.CUE()
	compiled.Lock()
	plans, ok := compiled.byCUE[src]
	if !ok {
		var err error
		if plans, err = compileCUE(src); err != nil {
			compiled.Unlock()
			panic(fmt.Sprintf("e2e: compiling cluster %s: %v\n%s", c.Name, err, src))
		}
		compiled.byCUE[src] = plans
	}
	compiled.Unlock()
	b, ok := plans[node]
	if !ok {
		panic("e2e: cluster " + c.Name + " has no node " + node)
	}
	p, err := plan.Decode(b)
	if err != nil {
		panic(fmt.Sprintf("e2e: the agent refuses the compiled plan of %s: %v", node, err))
	}
	return p
}

var compiled = struct {
	sync.Mutex
	byCUE map[string]map[string][]byte // CUE text -> node -> encoded plan
}{byCUE: map[string]map[string][]byte{}}

// CompileCUE validates one cluster file as `mwgc validate` does and
// compiles it as `mwgc compile` does: the plan of every node, by name.
// Findings other than warnings and notes make an error that lists them.
func CompileCUE(src string) (map[string]*plan.Plan, error) {
	enc, err := compileCUE(src)
	if err != nil {
		return nil, err
	}
	out := map[string]*plan.Plan{}
	for n, b := range enc {
		if out[n], err = plan.Decode(b); err != nil {
			return nil, fmt.Errorf("the agent refuses the compiled plan of %s: %w", n, err)
		}
	}
	return out, nil
}

func compileCUE(src string) (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "mwgc-e2e-cue-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "cluster.cue"), []byte(src), 0o644); err != nil {
		return nil, err
	}
	res, err := compiler.Load([]string{dir})
	if err != nil {
		return nil, err
	}
	nps, err := res.Plans()
	if err != nil {
		var b strings.Builder
		for _, f := range res.Findings {
			fmt.Fprintf(&b, "\n%s %s: %s", f.Severity, f.Rule, f.Message)
		}
		return nil, fmt.Errorf("%v%s", err, b.String())
	}
	out := map[string][]byte{}
	for _, np := range nps {
		b, err := plan.Encode(np.Plan)
		if err != nil {
			return nil, err
		}
		out[np.Node] = b
	}
	return out, nil
}

// CUE is the cluster as a CUE package for `mwgc validate` / `compile`:
// a transparent-router cluster on the protected segments inside
// (192.0.2.0/24, 2001:db8::/64) and outside (198.51.100.0/24), with the
// management protocol (unauthenticated) on inside, which both modes that
// run VRRP require.
func (c *Cluster) CUE() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("package clusters\n\n")
	w("segments: inside: {cidrs: [\"192.0.2.0/24\", \"2001:db8::/64\"], protected: true}\n")
	if c.uses("eth1", "") {
		w("segments: outside: {cidrs: [\"198.51.100.0/24\"], protected: true}\n")
	}
	w("\nclusters: %q: {\n\tmode: \"transparent-router\"\n", c.Name)
	for _, d := range c.Directors {
		w("\tnodes: %q: {\n\t\tpriority: %d\n\t\tmanagementIP: %q\n", d.Node, d.Priority, d.Addr4())
		w("\t\tinterfaces: eth0: {segment: \"inside\", addresses: [%q", d.Addr4())
		if c.uses("eth0", plan.FamilyIPv6) {
			w(", \"2001:db8::%x\"], linkLocal: %q}\n", d.Index, d.LinkLocal())
		} else {
			w("]}\n")
		}
		if c.uses("eth1", "") {
			w("\t\tinterfaces: eth1: {segment: \"outside\", addresses: [%q]}\n", d.Addr4b())
		}
		w("\t}\n")
	}
	ann := c.Announce
	if ann.Count == 0 {
		ann = plan.Announce{Count: 3, Interval: plan.Duration(10 * time.Millisecond)}
	}
	w("\tvrrp: announce: {count: %d, interval: %q, repeatAfter: %q}\n", ann.Count, ann.Interval.D().String(), ann.RepeatAfter.D().String())
	if ra := c.Reannounce; ra != nil {
		w("\tvrrp: announce: reannounce: {count: %d, holdoff: %q, refresh: %q}\n", ra.Count, ra.Holdoff.D().String(), ra.Refresh.D().String())
	}
	w("\tvrrp: rolloutGrace: %q\n", c.RolloutGrace.String())
	if a := c.Auth; a != nil {
		var keys []string
		for _, k := range a.Keys {
			keys = append(keys, fmt.Sprintf("{id: %d, file: %q}", k.ID, k.File))
		}
		w("\tvrrp: authentication: {keys: [%s], activeKey: %d", strings.Join(keys, ", "), a.ActiveKey)
		if a.Mode != "" {
			w(", mode: %q", a.Mode)
		}
		if a.Window != 0 {
			w(", window: %q", a.Window.D().String())
		}
		w("}\n")
	}
	for _, g := range c.Groups {
		seg := "inside"
		if g.Iface == "eth1" {
			seg = "outside"
		}
		iv := g.Interval
		if iv == 0 {
			iv = 100 * time.Millisecond
		}
		w("\tvrrp: groups: %q: {\n\t\tvrid: %d\n\t\tsegment: %q\n\t\tadvertInterval: %q\n", g.Name, g.VRID, seg, iv.String())
		vips := make([]string, len(g.VIPs))
		for i, v := range g.VIPs {
			vips[i] = strconv.Quote(netip.MustParsePrefix(v).Addr().String())
		}
		w("\t\tvips: [%s]\n", strings.Join(vips, ", "))
		if g.Family == plan.FamilyIPv4 {
			cs := g.Checksum
			if cs == "" {
				cs = plan.ChecksumPseudoHeader
			}
			w("\t\tchecksum: %q\n", cs)
		}
		if g.StrictAccept {
			w("\t\tacceptMode: false\n")
		}
		if g.VirtualMAC {
			w("\t\tvirtualMAC: true\n")
		}
		if u := g.Unicast; u != nil {
			w("\t\ttransport: \"unicast\"\n\t\tunicast: {minTTL: %d", u.MinTTL)
			if c.Auth == nil || (c.Auth.Mode != "" && c.Auth.Mode != plan.AuthEnforce) {
				w(", waiver: {reason: \"the end-to-end lab\"}")
			}
			w("}\n")
		}
		for _, e := range c.External {
			if e.Addr.Is4() == (g.Family == plan.FamilyIPv4) && g.Iface == "eth0" {
				w("\t\texternalPeers: %q: {address: %q, priority: %d, authentication: %v}\n", e.Name, e.Addr, e.Priority, c.Auth != nil && e.Auth)
			}
		}
		w("\t}\n")
	}
	iv := c.DiscoveryInterval
	if iv == 0 {
		iv = time.Second
	}
	w("\tmanagement: {segment: \"inside\", unauthenticated: true, discoveryInterval: %q}\n}\n", iv.String())
	return b.String()
}

// SetupAddresses gives every director its own addresses in the lab (the
// agent adds the link-local itself, as it must on a real node).
func (c *Cluster) SetupAddresses(lab *netlab.Lab) {
	for _, d := range c.Directors {
		lab.AddAddr(d.Node, netip.PrefixFrom(d.Addr4(), 24).String())
		if c.uses("eth0", plan.FamilyIPv6) {
			lab.AddAddr(d.Node, fmt.Sprintf("2001:db8::%x/64", d.Index))
		}
	}
}

// WritePlan writes p to path the way deploy tools do: a temporary file in
// the same directory renamed over the old one.
func WritePlan(t testing.TB, path string, p *plan.Plan) {
	t.Helper()
	b, err := plan.Encode(p)
	if err != nil {
		t.Fatalf("encode plan: %v", err)
	}
	WriteFileAtomic(t, path, b)
}

// WriteFileAtomic writes b to path by rename.
func WriteFileAtomic(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Agent is one mwgc-agent process in a lab node.
type Agent struct {
	lab      *netlab.Lab
	Node     string
	PlanPath string
	Proc     *netlab.Process
}

// StartAgent writes p into its own directory and starts mwgc-agent on it.
func StartAgent(t testing.TB, lab *netlab.Lab, p *plan.Plan, extra ...string) *Agent {
	t.Helper()
	dir := filepath.Join(lab.Dir(), "plan-"+p.Node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "plan.json")
	WritePlan(t, path, p)
	a := &Agent{lab: lab, Node: p.Node, PlanPath: path}
	a.Start(t, extra...)
	return a
}

// Start (re)starts the process on the current plan file and waits until its
// status listener answers.
func (a *Agent) Start(t testing.TB, extra ...string) {
	t.Helper()
	// A restart must not race the previous process: until it has exited it
	// still holds the status port, so the new one would fail to bind while
	// the readiness probe below is answered by the old one.
	if a.Proc != nil {
		if err := a.Proc.Wait(10 * time.Second); !a.Proc.Exited() {
			t.Fatalf("mwgc-agent on %s: the previous process is still running, not restarting: %v", a.Node, err)
		}
	}
	args := append([]string{"--plan", a.PlanPath, "--listen", StatusPort, "--reload-debounce", "50ms"}, extra...)
	a.Proc = a.lab.Start(a.Node, AgentBinary(t), args...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := a.Status(); err == nil {
			return
		}
		if a.Proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("mwgc-agent on %s did not come up:\n%s", a.Node, a.Proc.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Get fetches path from the agent's status listener, from inside its
// namespace.
func (a *Agent) Get(path string) ([]byte, error) {
	var c net.Conn
	err := a.lab.Do(a.Node, func() error {
		var err error
		c, err = net.DialTimeout("tcp", StatusPort, 2*time.Second)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

// Status returns the agent's /status.
func (a *Agent) Status() (*agent.Status, error) {
	b, err := a.Get("/status")
	if err != nil {
		return nil, err
	}
	var s agent.Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode /status: %v: %s", err, b)
	}
	return &s, nil
}

// Metric returns the value of one series from /metrics ("name{labels}"
// exactly as exposed), or 0 when absent.
func (a *Agent) Metric(series string) (float64, error) {
	b, err := a.Get("/metrics")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			_, err := fmt.Sscan(rest, &v)
			return v, err
		}
	}
	return 0, nil
}

// State is the agent's sync-group state ("" when it does not answer).
func (a *Agent) State() string {
	s, err := a.Status()
	if err != nil {
		return ""
	}
	return s.State
}

// Eventually polls cond until it returns true or timeout passes; then the
// test fails with the last explanation cond gave.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %s", what, timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// AddSecondSegment joins the given nodes by a second bridge (br1 in the
// lab's switch namespace) on an interface eth1 with an address from
// 198.51.100.0/24 per director. netlab builds one segment; a node with
// groups on two interfaces needs two. Everything lives in the lab's
// namespaces, so the lab's cleanup removes it.
func (c *Cluster) AddSecondSegment(t testing.TB, lab *netlab.Lab) {
	t.Helper()
	sw := lab.NS("sw")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("-n", sw, "link", "add", "br1", "type", "bridge", "mcast_snooping", "0", "stp_state", "0", "forward_delay", "0")
	run("-n", sw, "link", "set", "br1", "up")
	for i := range c.Directors {
		c.attachSecond(t, lab, i)
	}
}

// attachSecond gives director i its eth1 on br1.
func (c *Cluster) attachSecond(t testing.TB, lab *netlab.Lab, i int) {
	t.Helper()
	d := c.Directors[i]
	sw, port := lab.NS("sw"), fmt.Sprintf("q%d", i)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth1", "netns", lab.NS(d.Node))
	run("-n", sw, "link", "set", port, "master", "br1", "up")
	run("-n", lab.NS(d.Node), "link", "set", "eth1", "up")
	run("-n", lab.NS(d.Node), "addr", "add", netip.PrefixFrom(d.Addr4b(), 24).String(), "dev", "eth1")
}

// RecreateSecondSegment deletes node's eth1 and makes it again, as ifdown
// and ifup of a VLAN or bond do: the same name, address and segment, a
// new interface index.
func (c *Cluster) RecreateSecondSegment(t testing.TB, lab *netlab.Lab, node string) {
	t.Helper()
	for i, d := range c.Directors {
		if d.Node != node {
			continue
		}
		if out, err := exec.Command("ip", "-n", lab.NS(node), "link", "del", "eth1").CombinedOutput(); err != nil {
			t.Fatalf("delete eth1 of %s: %v\n%s", node, err, out)
		}
		time.Sleep(200 * time.Millisecond) // as ifdown; ifup: the agent sees the deletion first
		c.attachSecond(t, lab, i)
		return
	}
	t.Fatalf("no director %s", node)
}

// HasAddrOn reports whether node's interface ifname carries prefix.
func HasAddrOn(lab *netlab.Lab, node, ifname, prefix string) bool {
	out, err := exec.Command("ip", "-n", lab.NS(node), "-o", "addr", "show", "dev", ifname).CombinedOutput()
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(string(out)) {
		if f == prefix {
			return true
		}
	}
	return false
}

// vrrpFilter captures VRRP of both families (libpcap's "vrrp" is IPv4 only).
const vrrpFilter = "ip proto 112 or ip6 proto 112"
