package vrrpnet

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mwgc/mwgc/runtime/netlab"
)

func TestListenRejectsSourceOfWrongFamily(t *testing.T) {
	for _, tc := range []struct {
		ipv6   bool
		source string
	}{
		{false, "2001:db8::1"},
		{true, "192.0.2.1"},
	} {
		if _, err := Listen("lo", tc.ipv6, netip.MustParseAddr(tc.source)); err == nil {
			t.Errorf("Listen(lo, ipv6=%v, %s) succeeded, want family error", tc.ipv6, tc.source)
		}
	}
	if _, err := Listen("lo", false, netip.Addr{}); err == nil {
		t.Error("Listen with invalid source succeeded")
	}
	if _, err := Listen("no-such-if0", false, netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("Listen on missing interface succeeded")
	}
}

// advert builds a VRRPv3 advertisement (RFC 9568 section 5.2) for one
// address; the checksum is left zero (for IPv6 the kernel fills it in).
func advert(vrid, prio uint8, intervalCS uint16, addr netip.Addr) []byte {
	b := []byte{0x31, vrid, prio, 1, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[4:], intervalCS&0x0fff)
	return append(b, addr.AsSlice()...)
}

type received struct {
	Data     []byte
	Src, Dst netip.Addr
	TTL      int
}

func TestAdvertCrossesLabWithTTL255(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	lab.AddAddr("a", "192.0.2.1/24")
	lab.AddAddr("b", "192.0.2.2/24")
	llA := netip.MustParseAddr(lab.LinkLocal("a"))
	llB := netip.MustParseAddr(lab.LinkLocal("b"))

	for _, tc := range []struct {
		name       string
		ipv6       bool
		srcA, srcB netip.Addr
		msg        []byte
	}{
		{"IPv4", false, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
			advert(7, 100, 100, netip.MustParseAddr("192.0.2.100"))},
		{"IPv6", true, llA, llB,
			advert(8, 200, 100, netip.MustParseAddr("fe80::100"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := listenIn(t, lab, "a", tc.ipv6, tc.srcA)
			b := listenIn(t, lab, "b", tc.ipv6, tc.srcB)
			capture := lab.Capture("ip proto 112 or ip6 proto 112")

			if err := a.WritePacket(tc.msg); err != nil {
				t.Fatal(err)
			}
			got := read(t, b, 5*time.Second)
			want := received{Data: tc.msg, Src: tc.srcA, Dst: b.Group(), TTL: 255}
			if tc.ipv6 {
				// The kernel filled in the checksum: compare all but it.
				if len(got.Data) == len(want.Data) {
					copy(want.Data[6:8], got.Data[6:8])
				}
				if binary.BigEndian.Uint16(got.Data[6:8]) == 0 {
					t.Error("IPv6 checksum not filled in by the kernel")
				}
			}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("b received (-want +got):\n%s", diff)
			}

			// Multicast loopback is off: the sender does not read its own advert.
			if err := a.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if _, src, _, _, err := a.ReadPacket(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("sender read its own advert (src %v, err %v)", src, err)
			}

			// And the reverse direction.
			if err := b.WritePacket(tc.msg); err != nil {
				t.Fatal(err)
			}
			if got := read(t, a, 5*time.Second); got.Src != tc.srcB || got.TTL != 255 {
				t.Errorf("a received from %v with TTL %d, want %v and 255", got.Src, got.TTL, tc.srcB)
			}

			ads, err := netlab.DecodeVRRP(capture.Stop())
			if err != nil {
				t.Fatal(err)
			}
			if len(ads) != 2 {
				t.Fatalf("observer saw %d VRRP packets, want 2: %+v", len(ads), ads)
			}
			ad := ads[0]
			if ad.Src != tc.srcA.String() || ad.Dst != a.Group().String() || ad.TTL != 255 || ad.Version != 3 || ad.VRID != int(tc.msg[1]) {
				t.Errorf("observer decoded %+v", ad)
			}
			if tc.ipv6 && !ad.ChecksumOK {
				t.Errorf("tshark says the kernel-computed IPv6 checksum is not good: %+v", ad)
			}
		})
	}
}

// After the receiver's link goes down and up again (IPv6 even loses and
// regains its link-local address), its group membership still holds.
func TestReceivesAfterLinkDownUp(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	lab.AddAddr("a", "192.0.2.1/24")
	lab.AddAddr("b", "192.0.2.2/24")
	llA := netip.MustParseAddr(lab.LinkLocal("a"))
	llB := netip.MustParseAddr(lab.LinkLocal("b"))
	a4 := listenIn(t, lab, "a", false, netip.MustParseAddr("192.0.2.1"))
	b4 := listenIn(t, lab, "b", false, netip.MustParseAddr("192.0.2.2"))
	a6 := listenIn(t, lab, "a", true, llA)
	b6 := listenIn(t, lab, "b", true, llB)

	lab.LinkDown("a")
	if err := a4.WritePacket(advert(1, 100, 100, netip.MustParseAddr("192.0.2.100"))); err == nil {
		t.Error("WritePacket with the link down reported success")
	}
	lab.LinkUp("a")
	lab.LinkDown("b")
	lab.LinkUp("b")
	lab.LinkLocal("a") // wait for the link-local to come back before sending from it
	for _, c := range []struct {
		from, to *Conn
		msg      []byte
	}{
		{a4, b4, advert(1, 100, 100, netip.MustParseAddr("192.0.2.100"))},
		{a6, b6, advert(2, 100, 100, netip.MustParseAddr("fe80::100"))},
	} {
		if err := c.from.WritePacket(c.msg); err != nil {
			t.Fatal(err)
		}
		if got := read(t, c.to, 5*time.Second); got.Src != c.from.Source() || got.TTL != 255 {
			t.Errorf("after link flap: received from %v TTL %d", got.Src, got.TTL)
		}
	}
}

// A node with groups on two interfaces: each Conn sees only its own
// interface's adverts, even though both sockets are raw protocol-112 sockets
// in the same namespace.
func TestConnSeesOnlyItsInterface(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	lab.AddSegment("s1")
	lab.AddInterface("a", "eth1", "s1")
	lab.AddInterface("b", "eth1", "s1")
	lab.AddAddr("a", "192.0.2.1/24")
	lab.AddAddrDev("a", "eth1", "198.51.100.1/24")
	lab.AddAddrDev("b", "eth1", "198.51.100.2/24")
	var a0, a1, b1 *Conn
	for _, x := range []struct {
		node, ifname, src string
		c                 **Conn
	}{
		{"a", "eth0", "192.0.2.1", &a0}, {"a", "eth1", "198.51.100.1", &a1}, {"b", "eth1", "198.51.100.2", &b1},
	} {
		if err := lab.Do(x.node, func() (err error) {
			*x.c, err = Listen(x.ifname, false, netip.MustParseAddr(x.src))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*x.c).Close() })
	}
	if err := b1.WritePacket(advert(9, 100, 100, netip.MustParseAddr("198.51.100.100"))); err != nil {
		t.Fatal(err)
	}
	if got := read(t, a1, 5*time.Second); got.Src != netip.MustParseAddr("198.51.100.2") {
		t.Errorf("eth1 Conn received from %v", got.Src)
	}
	if err := a0.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, src, _, _, err := a0.ReadPacket(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("eth0 Conn read an advert sent on eth1's segment (src %v, err %v)", src, err)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	lab := netlab.New(t, "a")
	lab.AddAddr("a", "192.0.2.1/24")
	c := listenIn(t, lab, "a", false, netip.MustParseAddr("192.0.2.1"))
	errc := make(chan error, 1)
	go func() {
		_, _, _, _, err := c.ReadPacket(make([]byte, 64))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("read after close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadPacket still blocked 5s after Close")
	}
}

func listenIn(t *testing.T, lab *netlab.Lab, node string, ipv6 bool, src netip.Addr) *Conn {
	t.Helper()
	var c *Conn
	if err := lab.Do(node, func() (err error) {
		c, err = Listen(lab.Ifname(node), ipv6, src)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *Conn, timeout time.Duration) received {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, src, dst, ttl, err := c.ReadPacket(buf)
	if err != nil {
		t.Fatalf("ReadPacket: %v", err)
	}
	return received{Data: buf[:n], Src: src, Dst: dst, TTL: ttl}
}

// A send-only Conn sends like any other but joins no group (so the kernel
// sends no membership report for it) and receives nothing, even what the
// group's own socket on the same interface receives.
func TestSendOnlyConn(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	lab.AddAddr("a", "192.0.2.1/24")
	lab.AddAddr("b", "192.0.2.2/24")
	llA := netip.MustParseAddr(lab.LinkLocal("a"))
	llB := netip.MustParseAddr(lab.LinkLocal("b"))
	for _, tc := range []struct {
		ipv6       bool
		srcA, srcB netip.Addr
		group, vip string
	}{
		{false, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), "224.0.0.18", "192.0.2.100"},
		{true, llA, llB, "ff02::12", "2001:db8::100"},
	} {
		var tx *Conn
		if err := lab.Do("a", func() (err error) {
			tx, err = ListenSendOnly("eth0", tc.ipv6, tc.srcA)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if maddr := lab.Run("a", "ip", "maddr", "show", "dev", "eth0"); strings.Contains(maddr, tc.group) {
			t.Errorf("a send-only Conn joined %s:\n%s", tc.group, maddr)
		}
		rx := listenIn(t, lab, "b", tc.ipv6, tc.srcB)
		msg := advert(7, 100, 100, netip.MustParseAddr(tc.vip))
		if err := tx.WritePacket(msg); err != nil {
			t.Fatal(err)
		}
		if got := read(t, rx, 2*time.Second); got.Src != tc.srcA || got.TTL != 255 {
			t.Errorf("received from %v with TTL %d", got.Src, got.TTL)
		}
		joined := listenIn(t, lab, "a", tc.ipv6, tc.srcA) // the group joined on a's eth0 now
		if err := rx.WritePacket(msg); err != nil {
			t.Fatal(err)
		}
		read(t, joined, 2*time.Second)
		if n, src, _, _, err := tx.TryReadPacket(make([]byte, 64)); !errors.Is(err, ErrWouldBlock) {
			t.Errorf("the send-only Conn received %d bytes from %v (err %v)", n, src, err)
		}
		tx.Close()
		joined.Close()
	}
}
