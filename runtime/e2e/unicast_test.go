package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mwgc/mwgc/compiler"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/node"
	"github.com/mwgc/mwgc/runtime/plan"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// dropGroupFrames makes the lab a network without multicast or broadcast,
// as most clouds and overlays are: the bridge drops every frame sent to a
// group MAC address (multicast, and ff:ff:ff:ff:ff:ff), except ARP and
// IPv6 neighbour discovery, which such fabrics answer themselves, and
// netlab's capture marker. It returns the number of frames dropped so
// far. The table lives in the lab's switch namespace and goes with it.
func dropGroupFrames(t *testing.T, lab *netlab.Lab) (dropped func() int) {
	t.Helper()
	netlab.Require(t, "nft")
	const rules = `table bridge mwgc_lab_no_group {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ether type arp accept
		ether type 0x88b5 accept
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 counter drop
	}
}
`
	cmd := exec.Command("ip", "netns", "exec", lab.NS("sw"), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	counter := regexp.MustCompile(`counter packets (\d+)`)
	return func() int {
		out, err := exec.Command("ip", "netns", "exec", lab.NS("sw"), "nft", "list", "table", "bridge", "mwgc_lab_no_group").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list: %v\n%s", err, out)
		}
		m := counter.FindSubmatch(out)
		if m == nil {
			t.Fatalf("no counter in:\n%s", out)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
}

// sendBroadcast sends one UDP datagram to the broadcast address bcast from
// node.
func sendBroadcast(t *testing.T, lab *netlab.Lab, node string, bcast netip.Addr) {
	t.Helper()
	err := lab.Do(node, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
			return err
		}
		return unix.Sendto(fd, []byte("is anyone there?"), 0, &unix.SockaddrInet4{Port: 9, Addr: bcast.As4()})
	})
	if err != nil {
		t.Fatalf("broadcast from %s: %v", node, err)
	}
}

// unicastLab is the cluster of TestUnicastWithoutMulticast as an operator
// writes it: two directors and three scanning nodes, one unicast group
// with enforced authentication, unicast discovery.
const unicastLab = `package lab

segments: lab: {
	cidrs: ["192.0.2.0/24"]
	protected: true
}

clusters: cloud: {
	mode: "ha-proxy"
	nodes: {
		a:  {priority: 200, managementIP: "192.0.2.11", interfaces: eth0: {segment: "lab", addresses: ["192.0.2.11"]}}
		b:  {priority: 100, managementIP: "192.0.2.12", interfaces: eth0: {segment: "lab", addresses: ["192.0.2.12"]}}
		s1: {managementIP: "192.0.2.21", interfaces: eth0: {segment: "lab", addresses: ["192.0.2.21"]}}
		s2: {managementIP: "192.0.2.22", interfaces: eth0: {segment: "lab", addresses: ["192.0.2.22"]}}
		s3: {managementIP: "192.0.2.23", interfaces: eth0: {segment: "lab", addresses: ["192.0.2.23"]}}
	}
	vrrp: {
		announce: {count: 3, interval: "10ms", repeatAfter: "0s"}
		rolloutGrace: "0s"
		groups: web: {
			vrid:           51
			segment:        "lab"
			vips: ["192.0.2.100"]
			advertInterval: "100ms"
			checksum:       "pseudo-header"
			transport:      "unicast"
			authentication: {keys: [{id: 1, file: %q}], activeKey: 1}
		}
	}
	management: {
		segment:           "lab"
		keyFile:           %q
		discovery:         "unicast"
		discoveryInterval: "500ms"
	}
}
`

// compileLab validates and compiles a cluster written in CUE, as CI
// would, and returns the plans by node.
func compileLab(t *testing.T, dir, cue string) map[string]*plan.Plan {
	t.Helper()
	repo := filepath.Join(dir, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "cluster.cue"), []byte(cue), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Load([]string{repo})
	if err != nil {
		t.Fatal(err)
	}
	plans, err := res.Plans()
	if err != nil {
		var b bytes.Buffer
		compiler.WriteText(&b, res.Findings)
		t.Fatalf("%v\n%s", err, &b)
	}
	out := map[string]*plan.Plan{}
	for _, np := range plans {
		out[np.Node] = np.Plan
	}
	return out
}

// mgmtTable returns the management table of a's /status by node name.
func mgmtTable(a *Agent) (map[string]string, error) {
	s, err := a.Status()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(s.Management)
	if err != nil {
		return nil, err
	}
	var ms mgmt.Status
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range ms.Nodes {
		out[n.Name] = string(n.Status)
	}
	return out, nil
}

// waitDiscovered waits until a's management table lists every node in up.
func waitDiscovered(t *testing.T, a *Agent, up []string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, a.Node+" discovers "+strings.Join(up, ","), func() (bool, string) {
		tab, err := mgmtTable(a)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range up {
			if tab[n] != "up" {
				return false, fmt.Sprint(tab)
			}
		}
		return true, ""
	})
}

// unicastPeer is peer's row in the unicast status of a's only group.
func unicastPeer(t *testing.T, a *Agent, peer string) node.UnicastPeer {
	t.Helper()
	s, err := a.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range s.Groups {
		if g.Unicast == nil {
			continue
		}
		for _, p := range g.Unicast.Peers {
			if p.Name == peer {
				return p
			}
		}
	}
	t.Fatalf("%s has no unicast peer %s: %+v", a.Node, peer, s.Groups)
	return node.UnicastPeer{}
}

// TestUnicastWithoutMulticast: two directors and three scanning nodes,
// compiled from CUE, on a bridge that drops every multicast and broadcast
// frame. The directors elect over unicast adverts (authenticated), the
// Active discovers every node by unicast, a forged unicast advert from an
// address outside the plan and one in a director's name with TTL 64 are
// dropped and counted, and kill -9 and SIGTERM of the Active hand the VIP
// and the discovery over within the protocol's times.
func TestUnicastWithoutMulticast(t *testing.T) {
	lab := netlab.New(t, "a", "b", "s1", "s2", "s3", "x")
	dropped := dropGroupFrames(t, lab)
	addrs := map[string]string{"a": "192.0.2.11", "b": "192.0.2.12", "s1": "192.0.2.21", "s2": "192.0.2.22", "s3": "192.0.2.23", "x": "192.0.2.99"}
	for n, a := range addrs {
		lab.AddAddr(n, a+"/24")
	}
	vrrpKey, mgmtKey := filepath.Join(lab.Dir(), "vrrp-1.key"), filepath.Join(lab.Dir(), "mgmt.key")
	writeKeyFile(t, vrrpKey)
	k := make([]byte, 32)
	copy(k, "mwgc unicast lab management key!")
	if err := os.WriteFile(mgmtKey, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plans := compileLab(t, lab.Dir(), fmt.Sprintf(unicastLab, vrrpKey, mgmtKey))
	capture := lab.Capture(vrrpFilter)

	// The control: the lab carries neither broadcast nor multicast.
	forger := lab.Forger("x", "")
	before := dropped()
	sendBroadcast(t, lab, "x", netip.MustParseAddr("192.0.2.255"))
	if err := forger.SendVRRP(netip.MustParseAddr("192.0.2.99"), 255, forgedAdvert(t, netip.MustParseAddr("192.0.2.99"), 100, 10)); err != nil {
		t.Fatal(err)
	}
	Eventually(t, time.Second, "the bridge drops a broadcast and a multicast frame", func() (bool, string) {
		n := dropped()
		return n >= before+2, fmt.Sprintf("%d dropped, %d before", n, before)
	})

	agents := map[string]*Agent{}
	for _, n := range []string{"s1", "s2", "s3", "b", "a"} {
		agents[n] = StartAgent(t, lab, plans[n])
	}
	a, b := agents["a"], agents["b"]
	waitState(t, a, "Active", 5*time.Second)
	waitState(t, b, "Backup", 5*time.Second)
	Eventually(t, 2*time.Second, "VIP on a only", func() (bool, string) {
		return lab.HasAddr("a", "192.0.2.100/24") && !lab.HasAddr("b", "192.0.2.100/24"), ""
	})
	waitDiscovered(t, a, []string{"a", "b", "s1", "s2", "s3"}, 3*time.Second)
	if p := unicastPeer(t, b, "a"); p.AdvertsReceived == 0 || p.LastAdvert.IsZero() {
		t.Errorf("b's view of peer a: %+v", p)
	}

	// Forgeries by unicast: from outside the plan, and in a's name from
	// beyond a router (TTL 64, below the default minimum of 255).
	bMAC, err := net.ParseMAC(lab.MAC("b"))
	if err != nil {
		t.Fatal(err)
	}
	rogue, aAddr, bAddr := netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")
	advertTo := func(src netip.Addr) []byte {
		ad := vrrp.Advert{Version: 3, Type: 1, VRID: 51, Priority: 255, MaxAdvertInterval: 10, Addresses: []netip.Addr{vip4}}
		p, err := ad.Marshal(src, bAddr, vrrp.ChecksumPseudoHeader)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	trB := transitions(t, b)
	for i := 0; i < 3; i++ {
		if err := forger.SendVRRPTo(bMAC, rogue, bAddr, 255, advertTo(rogue)); err != nil {
			t.Fatal(err)
		}
		if err := forger.SendVRRPTo(bMAC, aAddr, bAddr, 64, advertTo(aAddr)); err != nil {
			t.Fatal(err)
		}
	}
	waitMetric(t, b, `mwgc_agent_drops_total{group="web",reason="unknown-source"}`, 3, 3*time.Second)
	waitMetric(t, b, `mwgc_agent_unicast_drops_total{group="web",peer="a",reason="ttl"}`, 3, 3*time.Second)
	if p := unicastPeer(t, b, "a"); p.Drops["ttl"] != 3 {
		t.Errorf("b's /status: drops of peer a %v, want ttl: 3", p.Drops)
	}
	if got := transitions(t, b); got != trB || b.State() != "Backup" || lab.HasAddr("b", "192.0.2.100/24") {
		t.Errorf("the forgeries moved b: transitions %d -> %d, state %s", trB, got, b.State())
	}

	// kill -9 of the Active: b takes over after Active_Down_Interval and
	// discovers every node that is still there.
	killedAt := time.Now()
	if err := a.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	a.Proc.Wait(5 * time.Second)
	waitState(t, b, "Active", 3*time.Second)
	Eventually(t, 2*time.Second, "VIP on b", func() (bool, string) { return lab.HasAddr("b", "192.0.2.100/24"), "" })
	waitDiscovered(t, b, []string{"b", "s1", "s2", "s3"}, 3*time.Second)

	// a comes back and preempts; then SIGTERM hands over gracefully.
	restartAt := time.Now()
	a.Start(t)
	waitState(t, a, "Active", 5*time.Second)
	waitState(t, b, "Backup", 3*time.Second)
	waitDiscovered(t, a, []string{"a", "b", "s1", "s2", "s3"}, 3*time.Second)
	termAt := time.Now()
	if err := a.Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.Proc.Wait(5 * time.Second); err != nil {
		t.Fatalf("mwgc-agent did not exit 0 on SIGTERM: %v", err)
	}
	waitState(t, b, "Active", 3*time.Second)
	waitDiscovered(t, b, []string{"b", "s1", "s2", "s3"}, 3*time.Second)
	time.Sleep(200 * time.Millisecond)

	ads, err := netlab.DecodeVRRP(capture.Stop())
	if err != nil {
		t.Fatal(err)
	}
	// The forgeries (TTL 64 in a's name, and the rogue's) are no adverts of a's.
	var real []netlab.VRRPAdvert
	for _, ad := range ads {
		if ad.TTL == 255 && ad.Src != rogue.String() {
			real = append(real, ad)
		}
	}
	adi := ActiveDownInterval(100, 100*time.Millisecond)
	// a's last advert is at most an interval (and some scheduling) before
	// the kill. b's adverts before the kill are the start-up election's (b
	// was Active until a preempted it, and its last one says it yields):
	// the window starts after them.
	from := killedAt.Add(-300 * time.Millisecond)
	for _, ad := range real {
		if ad.Src == "192.0.2.12" && ad.Time.Before(killedAt) && !ad.Time.Before(from) {
			from = ad.Time.Add(time.Nanosecond)
		}
	}
	crash, err := HandoverGap(real, 51, "192.0.2.11", "192.0.2.12", from, restartAt, false)
	if err != nil {
		t.Fatal(err)
	}
	graceful, err := HandoverGap(real, 51, "192.0.2.11", "192.0.2.12", termAt, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("crash handover %v (Active_Down_Interval %v), graceful %v (Skew_Time %v)", crash, adi, graceful, SkewTime(100, 100*time.Millisecond))
	if crash < adi-10*time.Millisecond {
		t.Errorf("crash handover after %v, before Active_Down_Interval %v: b did not wait for a", crash, adi)
	}
	if graceful >= adi {
		t.Errorf("graceful handover took %v, not less than Active_Down_Interval %v: b missed a's priority-0 advert", graceful, adi)
	}
	// Every advert on the wire went to a director's address, none to the
	// group; the forged ones aside, all with TTL 255.
	peerOf := map[string]string{"192.0.2.11": "192.0.2.12", "192.0.2.12": "192.0.2.11"}
	n := 0
	for _, ad := range ads {
		if ad.Src == rogue.String() || (ad.TTL == 64 && ad.Src == aAddr.String()) {
			continue
		}
		n++
		if ad.Dst != peerOf[ad.Src] || ad.TTL != 255 {
			t.Errorf("advert %s -> %s TTL %d; want unicast to the other director with TTL 255", ad.Src, ad.Dst, ad.TTL)
			break
		}
	}
	if n < 10 {
		t.Errorf("only %d adverts captured", n)
	}
}

// TestUnicastKeepalived: keepalived as a unicast peer (unicast_src_ip,
// unicast_peer) of an mwgc unicast group, on a bridge that drops
// multicast and broadcast: 2.4.3 with auth_hmac over IPv4 and IPv6, and
// Debian's 2.2.7 without authentication over IPv4. mwgc (200) wins the
// election and hands over on SIGTERM; at 50 it loses, and takes over on
// keepalived's graceful stop.
func TestUnicastKeepalived(t *testing.T) {
	t.Run("2.4.3-auth_hmac", func(t *testing.T) { unicastKeepalived(t, true) })
	t.Run("2.2.7", func(t *testing.T) { unicastKeepalived(t, false) })
}

func unicastKeepalived(t *testing.T, v243 bool) {
	lab := netlab.New(t, "a", "k", "g")
	netlab.Require(t, "keepalived")
	dropGroupFrames(t, lab)
	lab.AddAddr("k", "192.0.2.21/24")
	// g (192.0.2.22) is a second, silent unicast peer of both sides: each
	// sends every advert twice, once to the other and once to g.
	lab.AddAddr("g", "192.0.2.22/24")
	c := &Cluster{
		Name:      "cloud",
		Directors: []Director{{Node: "a", Priority: 200, Index: 11}},
		Groups: []Group{{Name: "v4", VRID: 51, Iface: "eth0", Family: plan.FamilyIPv4, VIPs: []string{"192.0.2.100/24"},
			Unicast: &plan.Unicast{MinTTL: 255}}},
		External: []ExternalPeer{{Name: "k", Addr: netip.MustParseAddr("192.0.2.21"), Priority: 100, Auth: v243},
			{Name: "g", Addr: netip.MustParseAddr("192.0.2.22"), Priority: 90, Auth: v243}},
	}
	unicast := func(src string, peers ...string) []string {
		lines := []string{"unicast_src_ip " + src, "unicast_ttl 255", "check_unicast_src", "unicast_peer {"}
		for _, p := range peers {
			lines = append(lines, "    "+p)
		}
		return append(lines, "}")
	}
	inst := []netlab.KeepalivedInstance{{Name: "VI_51", VRID: 51, Priority: 100, AdvertInterval: 100 * time.Millisecond,
		VIPs: []string{"192.0.2.100/24"}, Extra: unicast("192.0.2.21", "192.0.2.11", "192.0.2.22")}}
	instances := []string{"VI_51"}
	kcfg := netlab.KeepalivedConfig{Instances: inst}
	if v243 {
		key := filepath.Join(lab.Dir(), "vrrp-1.key")
		writeKeyFile(t, key)
		c.Auth = &plan.Auth{Mode: plan.AuthEnforce, Keys: []plan.Key{{ID: 1, File: key}}, ActiveKey: 1}
		kAuth := &netlab.KeepalivedAuth{Keys: map[int]string{1: key}, ActiveKey: 1}
		kcfg.Binary = netlab.Keepalived243(t)
		kcfg.Instances[0].AuthHMAC = kAuth
		// IPv6 too, between link-local addresses; keepalived sends IPv6
		// unicast with the kernel's hop limit (64) unless unicast_ttl says 255.
		lab.AddAddr("k", "2001:db8::21/64")
		kLL := lab.LinkLocal("k")
		c.Groups = append(c.Groups, Group{Name: "v6", VRID: 52, Iface: "eth0", Family: plan.FamilyIPv6, VIPs: []string{"2001:db8::100/64"},
			Unicast: &plan.Unicast{MinTTL: 255}})
		c.External = append(c.External, ExternalPeer{Name: "k6", Addr: netip.MustParseAddr(kLL), Priority: 100, Auth: true})
		kcfg.Instances = append(kcfg.Instances, netlab.KeepalivedInstance{Name: "VI_52", VRID: 52, Priority: 100,
			AdvertInterval: 100 * time.Millisecond, VIPs: []string{"2001:db8::100/64"}, GlobalFirst: true, AuthHMAC: kAuth,
			Extra: unicast(kLL, c.Directors[0].LinkLocal().String())})
		kcfg.SyncGroup = "all"
		instances = append(instances, "VI_52")
	}
	c.SetupAddresses(lab)
	capture := lab.Capture(vrrpFilter)
	k := lab.StartKeepalived("k", kcfg)
	for _, in := range instances {
		if !k.WaitState(in, "MASTER", 1, 5*time.Second) {
			t.Fatalf("keepalived %s alone did not become MASTER:\n%s", in, k.Log())
		}
	}
	vipsOn := func(node string) bool {
		if !lab.HasAddr(node, "192.0.2.100/24") {
			return false
		}
		return !v243 || lab.HasAddr(node, "2001:db8::100/64")
	}

	// Election: mwgc (200) wins over unicast.
	a := StartAgent(t, lab, c.Plan("a"))
	waitState(t, a, "Active", 5*time.Second)
	for _, in := range instances {
		if !k.WaitState(in, "BACKUP", 1, 5*time.Second) {
			t.Fatalf("keepalived %s did not yield to mwgc:\n%s", in, k.Log())
		}
	}
	Eventually(t, 3*time.Second, "VIPs only on a", func() (bool, string) { return vipsOn("a") && !lab.HasAddr("k", "192.0.2.100/24"), "" })
	s, err := a.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range s.Groups {
		if g.Unicast == nil {
			t.Fatalf("group %s has no unicast status", g.Name)
		}
		var up *node.UnicastPeer
		for i := range g.Unicast.Peers {
			if n := g.Unicast.Peers[i].Name; n == "k" || n == "k6" {
				up = &g.Unicast.Peers[i]
			}
		}
		if up == nil || up.AdvertsReceived == 0 || len(up.Drops) != 0 {
			t.Fatalf("group %s: keepalived's unicast adverts not accepted: %+v", g.Name, g.Unicast)
		}
		if !v243 {
			continue
		}
		verified := false
		for _, p := range g.Peers {
			verified = verified || (p.Address == up.Address && p.Signed > 0 && p.AuthFailures == 0)
		}
		if g.Auth == nil || !verified {
			t.Fatalf("group %s: keepalived's adverts not verified: %+v %+v", g.Name, g.Auth, g.Peers)
		}
	}

	// Graceful mwgc -> keepalived.
	if err := a.Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.Proc.Wait(5 * time.Second); err != nil {
		t.Fatalf("mwgc-agent did not exit 0: %v", err)
	}
	for _, in := range instances {
		if !k.WaitState(in, "MASTER", 2, 3*time.Second) {
			t.Fatalf("keepalived %s did not take over after mwgc's SIGTERM:\n%s", in, k.Log())
		}
	}
	c.Directors[0].Priority = 50
	loseToKeepalivedThenTakeOver(t, a, c.Plan("a"), k)
	Eventually(t, 2*time.Second, "VIPs on a", func() (bool, string) { return vipsOn("a"), "" })

	pcap := capture.Stop()
	ads, err := netlab.DecodeVRRP(pcap)
	if err != nil {
		t.Fatal(err)
	}
	// Both sides fan out alike: one message, signed once, in copies whose
	// checksum names each destination.
	frames := readVRRP4(t, pcap)
	// Unsigned adverts repeat their bytes: they count once.
	distinct := 1
	if v243 {
		distinct = 5
	}
	checkFanOut(t, frames, distinct, "192.0.2.11", "192.0.2.21", "192.0.2.22")
	checkFanOut(t, frames, distinct, "192.0.2.21", "192.0.2.11", "192.0.2.22")
	for _, ad := range ads {
		if strings.HasPrefix(ad.Dst, "224.") || strings.HasPrefix(ad.Dst, "ff02:") || ad.TTL != 255 {
			t.Errorf("advert %s -> %s TTL %d: want unicast with TTL 255 only", ad.Src, ad.Dst, ad.TTL)
			break
		}
	}
	for _, h := range []struct {
		from, to string
		prio     int
	}{{"192.0.2.11", "192.0.2.21", 100}, {"192.0.2.21", "192.0.2.11", 50}} {
		gap, err := HandoverGap(ads, 51, h.from, h.to, time.Time{}, time.Now(), true)
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("graceful %s -> %s: %v (Skew_Time %v)", h.from, h.to, gap, SkewTime(h.prio, 100*time.Millisecond))
		if adi := ActiveDownInterval(h.prio, 100*time.Millisecond); gap >= adi {
			t.Errorf("graceful %s -> %s took %v, not less than Active_Down_Interval %v", h.from, h.to, gap, adi)
		}
	}
}

// vrrp4Frame is one IPv4 VRRP packet of a capture.
type vrrp4Frame struct {
	src, dst netip.Addr
	payload  []byte
}

// readVRRP4 reads the IPv4 VRRP packets of a classic pcap file (what
// tcpdump -w writes) without a decoder in between: the bytes as sent.
func readVRRP4(t *testing.T, path string) []vrrp4Frame {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 && binary.LittleEndian.Uint32(b) != 0xa1b23c4d {
		t.Fatalf("%s is not a little-endian classic pcap file", path)
	}
	var out []vrrp4Frame
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		frame := b[off+16 : min(off+16+n, len(b))]
		off += 16 + n
		if len(frame) < 34 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 || frame[23] != vrrp.ProtocolNumber {
			continue
		}
		ip := frame[14:]
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if ihl < 20 || total > len(ip) || total < ihl {
			continue
		}
		out = append(out, vrrp4Frame{src: netip.AddrFrom4([4]byte(ip[12:16])), dst: netip.AddrFrom4([4]byte(ip[16:20])),
			payload: bytes.Clone(ip[ihl:total])})
	}
	return out
}

// checkFanOut: the adverts src sent went to each of dsts as copies that
// are byte for byte the same (sequence number and HMAC included) except
// the checksum, which is the IPv4 pseudo-header checksum for each copy's
// own destination. At least distinct different adverts must show it.
func checkFanOut(t *testing.T, frames []vrrp4Frame, distinct int, src string, dsts ...string) {
	t.Helper()
	copies := map[string]map[string][]byte{} // payload after the checksum -> dst -> payload
	for _, f := range frames {
		if f.src.String() != src || len(f.payload) < vrrp.HeaderLen {
			continue
		}
		k := string(f.payload[8:])
		if copies[k] == nil {
			copies[k] = map[string][]byte{}
		}
		copies[k][f.dst.String()] = f.payload
	}
	complete := 0
	for _, byDst := range copies {
		if len(byDst) != len(dsts) {
			continue
		}
		complete++
		sums := map[uint16]bool{}
		for _, d := range dsts {
			p := byDst[d]
			if p == nil {
				t.Fatalf("%s: a copy went to %v, not to %s", src, byDst, d)
			}
			msg := p[:vrrp.HeaderLen+4*int(p[3])]
			if _, form, err := vrrp.Parse(msg, netip.MustParseAddr(src), netip.MustParseAddr(d)); err != nil || form != vrrp.ChecksumPseudoHeader {
				t.Fatalf("%s's copy to %s: checksum not the pseudo-header one for its destination (%v, %v)", src, d, form, err)
			}
			sums[binary.BigEndian.Uint16(p[6:])] = true
		}
		if len(sums) != len(dsts) {
			t.Fatalf("%s's copies to %v share a checksum", src, dsts)
		}
	}
	if complete < distinct {
		t.Errorf("%s: only %d adverts seen in full fan-out to %v (of %d)", src, complete, dsts, len(copies))
	}
}
