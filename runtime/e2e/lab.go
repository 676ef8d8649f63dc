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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	// VirtualMAC runs the group on a macvlan with the RFC 9568 virtual MAC
	// (vmac4-<VRID> / vmac6-<VRID>).
	VirtualMAC bool
	// StrictAccept turns Accept_Mode off (RFC 9568 strict: the Active
	// drops packets to the VIPs); the default is the schema's, on.
	StrictAccept bool
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
	// Reannounce, when set, is the plan's re-announcement section (nil:
	// the agent's default).
	Reannounce *plan.Reannounce
	// Management adds an (unauthenticated) management section on eth0
	// with every director as a member.
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

// Plan is the plan of the director on node.
func (c *Cluster) Plan(node string) *plan.Plan {
	d := c.Director(node)
	eth0 := plan.Interface{Name: "eth0", Segment: "inside",
		Addresses: []netip.Prefix{netip.PrefixFrom(d.Addr4(), 24)}}
	if c.uses("eth0", plan.FamilyIPv6) {
		eth0.Addresses = append(eth0.Addresses, netip.MustParsePrefix(fmt.Sprintf("2001:db8::%x/64", d.Index)))
		eth0.LinkLocal = d.LinkLocal()
	}
	ifaces := []plan.Interface{eth0}
	if c.uses("eth1", "") {
		ifaces = append(ifaces, plan.Interface{Name: "eth1", Segment: "outside",
			Addresses: []netip.Prefix{netip.PrefixFrom(d.Addr4b(), 24)}})
	}
	ann := c.Announce
	if ann.Count == 0 {
		ann = plan.Announce{Count: 3, Interval: plan.Duration(10 * time.Millisecond)}
	}
	ann.Reannounce = c.Reannounce
	v := &plan.VRRP{Priority: d.Priority, Announce: ann, RolloutGrace: plan.Duration(c.RolloutGrace)}
	for _, g := range c.Groups {
		pg := plan.Group{
			Name: g.Name, VRID: g.VRID, Interface: g.Iface, Family: g.Family, Version: 3,
			AdvertInterval: plan.Duration(g.Interval), Preempt: true, AcceptMode: !g.StrictAccept,
			Source: source(d, g),
		}
		if pg.AdvertInterval == 0 {
			pg.AdvertInterval = plan.Duration(100 * time.Millisecond)
		}
		if g.Family == plan.FamilyIPv4 {
			pg.Checksum = g.Checksum
			if pg.Checksum == "" {
				pg.Checksum = plan.ChecksumPseudoHeader
			}
		}
		for _, vip := range g.VIPs {
			pg.VIPs = append(pg.VIPs, netip.MustParsePrefix(vip))
		}
		if g.VirtualMAC {
			fam := 4
			if g.Family == plan.FamilyIPv6 {
				fam = 6
			}
			pg.VMACInterface = fmt.Sprintf("vmac%d-%d", fam, g.VRID)
		}
		if c.Auth != nil {
			a := *c.Auth
			a.Keys = slices.Clone(a.Keys)
			pg.Auth = &a
		}
		for _, o := range c.Directors {
			if o.Node != d.Node {
				pg.Peers = append(pg.Peers, plan.Peer{Name: o.Node, Address: source(o, g), Priority: o.Priority, Auth: c.Auth != nil})
			}
		}
		for _, e := range c.External {
			if e.Addr.Is4() == (g.Family == plan.FamilyIPv4) && g.Iface == "eth0" {
				pg.Peers = append(pg.Peers, plan.Peer{Name: e.Name, Address: e.Addr, Priority: e.Priority, External: true, Auth: c.Auth != nil && e.Auth})
			}
		}
		v.Groups = append(v.Groups, pg)
	}
	p := &plan.Plan{
		APIVersion: plan.APIVersion, Cluster: c.Name, Node: d.Node, Mode: plan.ModeTransparentRouter,
		Interfaces: ifaces, VRRP: v,
	}
	if c.Management {
		iv := c.DiscoveryInterval
		if iv == 0 {
			iv = time.Second
		}
		m := &plan.Management{Interface: "eth0", Address: d.Addr4(), Broadcast: netip.MustParseAddr("192.0.2.255"),
			Port: 9793, DiscoveryInterval: plan.Duration(iv), DeadAfter: 3, Unauthenticated: true}
		for _, o := range c.Directors {
			m.Members = append(m.Members, plan.Member{Name: o.Node, Address: o.Addr4(), Director: true})
		}
		p.Management = m
	}
	return p
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
	for i, d := range c.Directors {
		port := fmt.Sprintf("q%d", i)
		run("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth1", "netns", lab.NS(d.Node))
		run("-n", sw, "link", "set", port, "master", "br1", "up")
		run("-n", lab.NS(d.Node), "link", "set", "eth1", "up")
		run("-n", lab.NS(d.Node), "addr", "add", netip.PrefixFrom(d.Addr4b(), 24).String(), "dev", "eth1")
	}
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
