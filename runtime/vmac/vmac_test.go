package vmac

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/announce"
	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/vip"
	"github.com/mwgc/mwgc/runtime/vrrp"
	"github.com/mwgc/mwgc/runtime/vrrpnet"
)

func TestMAC(t *testing.T) {
	for _, c := range []struct {
		vrid uint8
		ipv6 bool
		want string
	}{
		{1, false, "00:00:5e:00:01:01"},
		{51, false, "00:00:5e:00:01:33"},
		{255, true, "00:00:5e:00:02:ff"},
	} {
		if got := MAC(c.vrid, c.ipv6).String(); got != c.want {
			t.Errorf("MAC(%d, %v) = %s, want %s", c.vrid, c.ipv6, got, c.want)
		}
	}
	if err := Ensure("vmac4-0", "lo", 0, false); err == nil {
		t.Error("Ensure accepted VRID 0")
	}
}

func do(t *testing.T, lab *netlab.Lab, node string, fn func() error) {
	t.Helper()
	if err := lab.Do(node, fn); err != nil {
		t.Fatal(err)
	}
}

func sysctl(lab *netlab.Lab, node, key string) string {
	return strings.TrimSpace(lab.Run(node, "sysctl", "-n", key))
}

func TestEnsureAdoptRefuseRemove(t *testing.T) {
	lab := netlab.New(t, "a")
	do(t, lab, "a", func() error {
		for range 2 { // idempotent
			if err := Ensure("vmac4-9", "eth0", 9, false); err != nil {
				return err
			}
		}
		return Ensure("vmac6-9", "eth0", 9, true)
	})
	show := lab.Run("a", "ip", "-d", "link", "show", "vmac4-9")
	for _, want := range []string{"vmac4-9@eth0", "00:00:5e:00:01:09", "state DOWN", "macvlan mode bridge", "addrgenmode none"} {
		if !strings.Contains(show, want) {
			t.Errorf("vmac4-9 lacks %q:\n%s", want, show)
		}
	}
	if show := lab.Run("a", "ip", "link", "show", "vmac6-9"); !strings.Contains(show, "00:00:5e:00:02:09") {
		t.Errorf("vmac6-9 has not the IPv6 virtual MAC:\n%s", show)
	}
	for key, want := range map[string]string{
		"net.ipv4.conf.vmac4-9.arp_ignore":    "1",
		"net.ipv4.conf.vmac4-9.rp_filter":     "2",
		"net.ipv4.conf.eth0.arp_ignore":       "1",
		"net.ipv4.conf.eth0.arp_announce":     "2",
		"net.ipv6.conf.vmac4-9.addr_gen_mode": "1",
	} {
		if got := sysctl(lab, "a", key); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	if addrs := lab.AddrsDev("a", "vmac4-9"); len(addrs) != 0 {
		t.Errorf("the macvlan has addresses of its own: %v", addrs)
	}

	ll := netip.MustParseAddr("fe80::a")
	do(t, lab, "a", func() error { return SetActive("vmac6-9", true, ll) })
	if show := lab.Run("a", "ip", "link", "show", "vmac6-9"); !strings.Contains(show, "state UP") {
		t.Errorf("not up after SetActive(true):\n%s", show)
	}
	if addrs := lab.AddrsDev("a", "vmac6-9"); len(addrs) != 1 || !strings.HasPrefix(addrs[0], "fe80::a/64") {
		t.Errorf("addresses after SetActive(true): %v, want the link-local alone", addrs)
	}
	do(t, lab, "a", func() error { return SetActive("vmac6-9", false, ll) })
	if show := lab.Run("a", "ip", "link", "show", "vmac6-9"); !strings.Contains(show, "state DOWN") {
		t.Errorf("not down after SetActive(false):\n%s", show)
	}
	// Adopted after a crash that left it up, with a VIP: it stays so (its
	// clients are served until another Active is heard); adopted down, it
	// stays down.
	do(t, lab, "a", func() error {
		if err := SetActive("vmac6-9", true, ll); err != nil {
			return err
		}
		return Ensure("vmac6-9", "eth0", 9, true)
	})
	if show := lab.Run("a", "ip", "link", "show", "vmac6-9"); strings.Contains(show, "state DOWN") {
		t.Errorf("an adopted macvlan that was up went down:\n%s", show)
	}
	do(t, lab, "a", func() error {
		if err := SetActive("vmac6-9", false, ll); err != nil {
			return err
		}
		return Ensure("vmac6-9", "eth0", 9, true)
	})
	if show := lab.Run("a", "ip", "link", "show", "vmac6-9"); !strings.Contains(show, "state DOWN") {
		t.Errorf("an adopted macvlan that was down came up:\n%s", show)
	}

	// Interfaces that are not ours are refused and left as they are.
	lab.Run("a", "ip", "link", "add", "vmac4-8", "type", "veth", "peer", "name", "other8")
	lab.Run("a", "ip", "link", "add", "vmac4-7", "link", "eth0", "type", "macvlan", "mode", "bridge")
	lab.Run("a", "ip", "link", "add", "vmac4-6", "link", "eth0", "address", "00:00:5e:00:01:06", "type", "macvlan", "mode", "private")
	do(t, lab, "a", func() error {
		for name, want := range map[string]string{"vmac4-8": "not a macvlan", "vmac4-7": "exists with MAC", "vmac4-6": "not bridge"} {
			vrid := uint8(name[len(name)-1] - '0')
			if err := Ensure(name, "eth0", vrid, false); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Ensure(%s): %v, want an error saying %q", name, err, want)
			}
		}
		if err := Remove("vmac4-8"); err == nil {
			t.Error("Remove deleted a veth")
		}
		if err := Ensure("vmac4-5", "eth9", 5, false); err == nil || !strings.Contains(err.Error(), "eth9") {
			t.Errorf("Ensure on a missing parent: %v", err)
		}
		for range 2 { // absent is fine
			if err := Remove("vmac4-9"); err != nil {
				return err
			}
		}
		return nil
	})
	if out := lab.Run("a", "ip", "-o", "link", "show"); strings.Contains(out, "vmac4-9") || !strings.Contains(out, "vmac4-8") {
		t.Errorf("after Remove:\n%s", out)
	}
}

// A macvlan that is not active sends nothing, even when the parent link
// flaps and addresses are configured on it; once
// active, adverts, gratuitous ARPs, neighbour advertisements and ARP
// replies for the VIP carry the virtual MAC, and the parent neither
// answers ARP for the VIP nor names the VIP in its own ARP requests.
func TestSilentUntilActiveThenEverythingFromTheVirtualMAC(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	lab.AddAddr("a", "192.0.2.11/24")
	lab.AddAddr("b", "192.0.2.12/24")
	mac4, mac6 := MAC(9, false).String(), MAC(9, true).String()
	vip4, vip6 := netip.MustParsePrefix("192.0.2.100/24"), netip.MustParsePrefix("2001:db8::100/64")
	ll := netip.MustParseAddr("fe80::a")
	capture := lab.Capture("")
	do(t, lab, "a", func() error {
		if err := Ensure("vmac4-9", "eth0", 9, false); err != nil {
			return err
		}
		if err := Ensure("vmac6-9", "eth0", 9, true); err != nil {
			return err
		}
		return vip.Add("vmac4-9", vip4)
	})
	lab.LinkDown("a")
	lab.LinkUp("a")
	time.Sleep(1500 * time.Millisecond) // MLD reports and router solicitations would be out by now
	silentUntil := time.Now()

	do(t, lab, "a", func() error {
		if err := SetActive("vmac4-9", true, netip.Addr{}); err != nil {
			return err
		}
		if err := SetActive("vmac6-9", true, ll); err != nil {
			return err
		}
		if err := vip.Add("vmac6-9", vip6); err != nil {
			return err
		}
		c4, err := vrrpnet.Listen("vmac4-9", false, netip.MustParseAddr("192.0.2.11"))
		if err != nil {
			return err
		}
		defer c4.Close()
		c6, err := vrrpnet.Listen("vmac6-9", true, ll)
		if err != nil {
			return err
		}
		defer c6.Close()
		for _, c := range []struct {
			conn *vrrpnet.Conn
			src  netip.Addr
			vip  netip.Addr
		}{{c4, netip.MustParseAddr("192.0.2.11"), vip4.Addr()}, {c6, ll, vip6.Addr()}} {
			adv := vrrp.Advert{Version: 3, Type: 1, VRID: 9, Priority: 200, MaxAdvertInterval: 100, Addresses: []netip.Addr{c.vip}}
			dst, form := vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader
			if c.src.Is6() {
				dst, form = vrrp.GroupIPv6, vrrp.ChecksumIPv6
			}
			data, err := adv.Marshal(c.src, dst, form)
			if err != nil {
				return err
			}
			if err := c.conn.WritePacket(data); err != nil {
				return err
			}
		}
		for _, n := range []struct {
			ifname string
			vip    netip.Addr
		}{{"vmac4-9", vip4.Addr()}, {"vmac6-9", vip6.Addr()}} {
			an, err := announce.Open(n.ifname)
			if err != nil {
				return err
			}
			err = an.Announce(n.vip)
			an.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	// b talks to the VIP (an ARP request first), then a answers b from the
	// VIP after forgetting b's MAC (an ARP request of a's own).
	do(t, lab, "b", func() error {
		c, err := net.Dial("udp4", "192.0.2.100:9")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	})
	time.Sleep(200 * time.Millisecond)
	lab.Run("a", "ip", "neigh", "flush", "dev", "eth0")
	do(t, lab, "a", func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: vip4.Addr().AsSlice()}, &net.UDPAddr{IP: net.ParseIP("192.0.2.12"), Port: 9})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	})
	time.Sleep(200 * time.Millisecond)
	if n := lab.Run("b", "ip", "neigh", "show", "192.0.2.100"); !strings.Contains(n, mac4) {
		t.Errorf("b's neighbour entry for the VIP is not the virtual MAC: %q", n)
	}
	// Back to Backup: the VIPs go, then the link; nothing more from the MAC.
	do(t, lab, "a", func() error {
		if err := vip.Remove("vmac6-9", vip6); err != nil {
			return err
		}
		if err := vip.Remove("vmac4-9", vip4); err != nil {
			return err
		}
		for _, n := range []string{"vmac4-9", "vmac6-9"} {
			if err := SetActive(n, false, ll); err != nil {
				return err
			}
		}
		return nil
	})
	silentFrom := time.Now()
	time.Sleep(time.Second)
	pcap := capture.Stop()

	rows, err := netlab.Decode(pcap, "eth.src == "+mac4+" or eth.src == "+mac6, "frame.time_epoch", "_ws.col.Protocol", "_ws.col.Info")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, r := range rows {
		at := netlabTime(r[0])
		if at.Before(silentUntil) || at.After(silentFrom) {
			t.Errorf("the macvlan sent while not active: %v", r)
		}
		seen = append(seen, r[1])
	}
	for _, want := range []string{"VRRP", "ARP", "ICMPv6"} {
		if !strings.Contains(strings.Join(seen, " "), want) {
			t.Errorf("no %s from the virtual MAC after SetActive; saw %v", want, seen)
		}
	}
	arps, err := netlab.DecodeARP(pcap)
	if err != nil {
		t.Fatal(err)
	}
	parentMAC := lab.MAC("a")
	var replies, garps int
	for _, p := range arps {
		switch {
		case p.Opcode == 2 && p.SenderIP == "192.0.2.100":
			replies++
			if p.SenderMAC != mac4 {
				t.Errorf("ARP reply for the VIP from %s, not the virtual MAC", p.SenderMAC)
			}
		case p.Opcode == 1 && p.SenderIP == "192.0.2.100" && p.TargetIP == "192.0.2.100":
			garps++
			if p.SenderMAC != mac4 || p.EthSrc != mac4 {
				t.Errorf("gratuitous ARP for the VIP from %s / %s, not the virtual MAC", p.SenderMAC, p.EthSrc)
			}
		case p.Opcode == 1 && p.SenderIP == "192.0.2.100":
			t.Errorf("an ARP request names the VIP as its sender (from %s): arp_announce", p.SenderMAC)
		case p.SenderMAC == mac4 && p.SenderIP != "192.0.2.100":
			t.Errorf("the virtual MAC speaks for %s", p.SenderIP)
		case p.Opcode == 2 && p.SenderIP == "192.0.2.11" && p.SenderMAC != parentMAC:
			t.Errorf("a's own address answered from %s", p.SenderMAC)
		}
	}
	if replies == 0 || garps == 0 {
		t.Errorf("%d ARP replies and %d gratuitous ARPs for the VIP", replies, garps)
	}
	nas, err := netlab.DecodeNA(pcap)
	if err != nil {
		t.Fatal(err)
	}
	var na6 int
	for _, na := range nas {
		if na.Target == "2001:db8::100" {
			na6++
			if na.EthSrc != mac6 || na.TargetLinkAddr != mac6 || na.Src != ll.String() {
				t.Errorf("NA for the IPv6 VIP from %s (%s), target link address %s", na.EthSrc, na.Src, na.TargetLinkAddr)
			}
		}
	}
	if na6 == 0 {
		t.Error("no unsolicited NA for the IPv6 VIP")
	}
}

// Two routers with the same virtual MAC: the Backup (in protodown) still
// hears the Active's adverts on its parent, since the macvlan is in bridge
// mode (private mode would keep frames from "its own" MAC to itself).
func TestBackupHearsActiveWithTheSameMAC(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	lab.AddAddr("a", "192.0.2.11/24")
	lab.AddAddr("b", "192.0.2.12/24")
	var rx *vrrpnet.Conn
	do(t, lab, "a", func() error {
		if err := Ensure("vmac4-9", "eth0", 9, false); err != nil {
			return err
		}
		var err error
		rx, err = vrrpnet.Listen("eth0", false, netip.MustParseAddr("192.0.2.11"))
		return err
	})
	defer rx.Close()
	do(t, lab, "b", func() error {
		if err := Ensure("vmac4-9", "eth0", 9, false); err != nil {
			return err
		}
		if err := SetActive("vmac4-9", true, netip.Addr{}); err != nil {
			return err
		}
		tx, err := vrrpnet.Listen("vmac4-9", false, netip.MustParseAddr("192.0.2.12"))
		if err != nil {
			return err
		}
		defer tx.Close()
		adv := vrrp.Advert{Version: 3, Type: 1, VRID: 9, Priority: 200, MaxAdvertInterval: 100, Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
		data, err := adv.Marshal(netip.MustParseAddr("192.0.2.12"), vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
		if err != nil {
			return err
		}
		return tx.WritePacket(data)
	})
	rx.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	n, src, _, ttl, err := rx.ReadPacket(buf)
	if err != nil {
		t.Fatalf("the Backup's parent did not receive the Active's advert: %v", err)
	}
	if src.String() != "192.0.2.12" || ttl != 255 || n != 12 || buf[1] != 9 {
		t.Errorf("received %d bytes from %v, TTL %d, VRID %d", n, src, ttl, buf[1])
	}
}

func netlabTime(s string) time.Time {
	var sec, nsec int64
	whole, frac, _ := strings.Cut(s, ".")
	for _, c := range whole {
		sec = sec*10 + int64(c-'0')
	}
	frac = (frac + "000000000")[:9]
	for _, c := range frac {
		nsec = nsec*10 + int64(c-'0')
	}
	return time.Unix(sec, nsec)
}
