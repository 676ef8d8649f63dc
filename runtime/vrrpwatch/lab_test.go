package vrrpwatch

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/vrrpnet"
)

func advert(vrid, prio uint8, addr netip.Addr) []byte {
	b := []byte{0x31, vrid, prio, 1, 0, 100, 0, 0}
	return append(b, addr.AsSlice()...)
}

// TestSeesForgedOwnAddress: on a default host (accept_local=0, untouched),
// an IPv4 advert from another host carrying this node's own source address
// never reaches a raw VRRP socket, but the watcher sees it, with the
// forger's MAC; the node's own adverts are not reported. IPv6 too (where
// the kernel does deliver it to the raw socket).
func TestSeesForgedOwnAddress(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	lab.AddAddr("a", "192.0.2.11/24")
	lab.AddAddr("b", "192.0.2.12/24")
	lab.AddAddr("b", "192.0.2.11/32") // the forger takes a's address
	if got := strings.TrimSpace(lab.Run("a", "sysctl", "-n", "net.ipv4.conf.all.accept_local")); got != "0" {
		t.Fatalf("accept_local is %q; the test is about the default", got)
	}
	llA := netip.MustParseAddr(lab.LinkLocal("a"))
	lab.Run("b", "ip", "-6", "addr", "add", llA.String()+"/64", "dev", "eth0", "nodad")
	for _, tc := range []struct {
		name string
		ipv6 bool
		own  netip.Addr
	}{{"IPv4", false, netip.MustParseAddr("192.0.2.11")}, {"IPv6", true, llA}} {
		t.Run(tc.name, func(t *testing.T) {
			var w *Watcher
			var raw, sendA *vrrpnet.Conn
			if err := lab.Do("a", func() (err error) {
				if w, err = Listen("eth0"); err != nil {
					return err
				}
				if raw, err = vrrpnet.Listen("eth0", tc.ipv6, tc.own); err != nil {
					return err
				}
				sendA = raw
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			defer raw.Close()
			if !ignoresOutgoing(t, w) {
				t.Error("the packet socket is handed the host's own frames (PACKET_IGNORE_OUTGOING not set)")
			}
			var forger *vrrpnet.Conn
			if err := lab.Do("b", func() (err error) {
				forger, err = vrrpnet.Listen("eth0", tc.ipv6, tc.own)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer forger.Close()

			// a's own advert first: the watcher must not report it.
			if err := sendA.WritePacket(advert(9, 100, netip.MustParseAddr("192.0.2.100"))); err != nil && !tc.ipv6 {
				t.Fatal(err)
			}
			vip := netip.MustParseAddr("192.0.2.100")
			if tc.ipv6 {
				vip = netip.MustParseAddr("2001:db8::100")
			}
			if err := forger.WritePacket(advert(7, 255, vip)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, snapLen)
			var f Frame
			w.SetReadDeadline(time.Now().Add(2 * time.Second))
			if err := w.Read(buf, &f); err != nil {
				t.Fatalf("the watcher saw nothing: %v", err)
			}
			if f.Src != tc.own || f.VRID != 7 || f.Priority != 255 || f.MAC.String() != lab.MAC("b") || f.TTL != 255 {
				t.Fatalf("frame %+v (b's MAC %s); the first frame must be the forgery, not a's own advert", f, lab.MAC("b"))
			}
			// The raw socket: IPv4 input drops a packet with a local source
			// (accept_local=0), so it sees nothing; IPv6 input has no such
			// rule and delivers it (the engine then counts "own-source").
			raw.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, src, _, _, err := raw.ReadPacket(buf)
			switch {
			case !tc.ipv6 && !errors.Is(err, os.ErrDeadlineExceeded):
				t.Fatalf("IPv4: the raw socket received an advert from %v (%v): the control failed", src, err)
			case tc.ipv6 && (err != nil || src != tc.own):
				t.Fatalf("IPv6: the raw socket did not get the forgery: %v %v", src, err)
			}
		})
	}
}

// ignoresOutgoing reads PACKET_IGNORE_OUTGOING back from w's socket.
func ignoresOutgoing(t *testing.T, w *Watcher) bool {
	t.Helper()
	rc, err := w.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := rc.Control(func(fd uintptr) {
		v, err = unix.GetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING)
	}); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return v == 1
}

// TestSeesClaims (root, namespaces): a holds the VIPs and watches for
// claims; a's own gratuitous ARP is not reported; b's ARP for its own
// address is filtered out; b's gratuitous ARP for the IPv4 VIP and its
// Neighbor Advertisement for the IPv6 VIP are reported, in order, with
// b's MAC.
func TestSeesClaims(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	lab.AddAddr("a", "192.0.2.11/24")
	lab.AddAddr("a", "192.0.2.100/24")
	lab.AddAddr("a", "2001:db8::100/64")
	lab.AddAddr("b", "192.0.2.12/24")
	macA, _ := net.ParseMAC(lab.MAC("a"))
	macB, _ := net.ParseMAC(lab.MAC("b"))
	send := func(node string, frames ...[]byte) {
		t.Helper()
		if err := lab.Do(node, func() error {
			ifi, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			c, err := packet.Listen(ifi, packet.Raw, ethPAll, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			for _, f := range frames {
				if _, err := c.WriteTo(f, &packet.Addr{HardwareAddr: net.HardwareAddr(f[:6])}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	var w *ClaimWatcher
	if err := lab.Do("a", func() (err error) {
		w, err = ListenClaims("eth0", []netip.Addr{vip4, vip6})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	send("a", arpFrame(t, arp.OperationRequest, macA, vip4, vip4))
	send("b",
		arpFrame(t, arp.OperationRequest, macB, netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("192.0.2.11")),
		arpFrame(t, arp.OperationRequest, macB, vip4, vip4),
		naFrame(t, macB, vip6, macB, 255))
	buf := make([]byte, snapLen)
	for _, want := range []Claim{{Addr: vip4, MAC: macB, Kind: "arp-request"}, {Addr: vip6, MAC: macB, Kind: "neighbor-advertisement"}} {
		var c Claim
		w.SetReadDeadline(time.Now().Add(2 * time.Second))
		if err := w.Read(buf, &c); err != nil {
			t.Fatalf("waiting for %+v: %v", want, err)
		}
		if c.Addr != want.Addr || c.MAC.String() != want.MAC.String() || c.Kind != want.Kind {
			t.Fatalf("claim %+v, want %+v (a's own GARP and b's ARP for its own address must not appear)", c, want)
		}
	}
}
