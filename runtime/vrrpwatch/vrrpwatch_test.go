package vrrpwatch

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/bpf"
)

func frame4(src [4]byte, proto, ttl byte, vrrp ...byte) []byte {
	b := []byte{0x01, 0x00, 0x5e, 0, 0, 0x12, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x08, 0x00}
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, ttl, proto, 0, 0, src[0], src[1], src[2], src[3], 224, 0, 0, 18}
	return append(append(b, ip...), vrrp...)
}

func frame6(src netip.Addr, nh byte, vrrp ...byte) []byte {
	b := []byte{0x33, 0x33, 0, 0, 0, 0x12, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x86, 0xdd}
	ip := make([]byte, 40)
	ip[0], ip[6], ip[7] = 0x60, nh, 255
	s := src.As16()
	copy(ip[8:], s[:])
	return append(append(b, ip...), vrrp...)
}

func TestParseFrame(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		want  *Frame
	}{
		{"IPv4", frame4([4]byte{192, 0, 2, 11}, 112, 255, 0x31, 51, 200, 1), &Frame{Src: netip.MustParseAddr("192.0.2.11"), MAC: net.HardwareAddr{2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}, Version: 3, VRID: 51, Priority: 200, TTL: 255}},
		{"IPv6", frame6(netip.MustParseAddr("fe80::11"), 112, 0x31, 7, 0, 1), &Frame{Src: netip.MustParseAddr("fe80::11"), MAC: net.HardwareAddr{2, 0x11, 0x22, 0x33, 0x44, 0x55}, Version: 3, VRID: 7, Priority: 0, TTL: 255}},
		{"IPv4 not VRRP", frame4([4]byte{192, 0, 2, 11}, 17, 64, 0x31, 51, 200), nil},
		{"IPv6 not VRRP", frame6(netip.MustParseAddr("fe80::11"), 58, 0x31, 7, 0), nil},
		{"cut header", frame4([4]byte{192, 0, 2, 11}, 112, 255)[:30], nil},
		{"no VRRP bytes", frame4([4]byte{192, 0, 2, 11}, 112, 255, 0x31), nil},
		{"ARP", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06}, make([]byte, 28)...), nil},
		{"short", []byte{1, 2, 3}, nil},
	} {
		var f Frame
		ok := ParseFrame(tc.frame, &f)
		if ok != (tc.want != nil) {
			t.Errorf("%s: ParseFrame = %v", tc.name, ok)
			continue
		}
		if ok {
			if diff := cmp.Diff(tc.want, &f, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("%s: (-want +got):\n%s", tc.name, diff)
			}
		}
	}
}

// TestFilter runs the BPF program in x/net's virtual machine: it keeps
// incoming VRRP over IPv4 and IPv6 and nothing else. The VM does not
// emulate the packet-type extension, so the first instruction is replaced
// by the type as a constant: incoming (0) here, outgoing (4) below.
func TestFilter(t *testing.T) {
	vmFor := func(pkttype uint32) *bpf.VM { return vmWithPacketType(t, filter, pkttype) }
	vm := vmFor(0)
	if n, _ := vmFor(packetOutgoing).Run(frame4([4]byte{192, 0, 2, 11}, 112, 255, 0x31, 51, 200, 1)); n != 0 {
		t.Fatalf("an outgoing advert was kept (%d)", n)
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		keep  bool
	}{
		{"IPv4 VRRP", frame4([4]byte{192, 0, 2, 11}, 112, 255, 0x31, 51, 200, 1), true},
		{"IPv6 VRRP", frame6(netip.MustParseAddr("fe80::11"), 112, 0x31, 7, 0, 1), true},
		{"IPv4 UDP", frame4([4]byte{192, 0, 2, 11}, 17, 64, 1, 2, 3), false},
		{"IPv6 ICMP", frame6(netip.MustParseAddr("fe80::11"), 58, 1, 2, 3), false},
		{"ARP", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06}, make([]byte, 28)...), false},
	} {
		n, err := vm.Run(bytes.Clone(tc.frame))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if (n > 0) != tc.keep {
			t.Errorf("%s: filter returned %d", tc.name, n)
		}
	}
}

// vmWithPacketType runs a filter whose first instruction loads the packet
// type in x/net's BPF VM, which does not emulate that extension: the
// instruction becomes the type as a constant (0 incoming, packetOutgoing).
func vmWithPacketType(t *testing.T, raw []bpf.RawInstruction, pkttype uint32) *bpf.VM {
	t.Helper()
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	prog[0] = bpf.LoadConstant{Dst: bpf.RegA, Val: pkttype}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// FuzzParseFrame: any bytes decode or are refused without panicking; what
// decodes names a source of the frame's IP version.
func FuzzParseFrame(f *testing.F) {
	f.Add(frame4([4]byte{192, 0, 2, 11}, 112, 255, 0x31, 51, 200, 1))
	f.Add(frame6(netip.MustParseAddr("fe80::11"), 112, 0x31, 7, 0, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr Frame
		if !ParseFrame(b, &fr) {
			return
		}
		if !fr.Src.IsValid() || len(fr.MAC) != 6 || (fr.Src.Is4() != (b[12] == 0x08)) {
			t.Fatalf("decoded %+v from %x", fr, b)
		}
	})
}
