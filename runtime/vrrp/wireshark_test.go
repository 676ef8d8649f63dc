package vrrp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// needTool skips when a tool is missing, except in CI where it must be there.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: %s is required (make deps): %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// ipPacket wraps a VRRP message in an IPv4 or IPv6 header with TTL 255.
func ipPacket(src, dst netip.Addr, msg []byte) []byte {
	if src.Is4() {
		h := make([]byte, 20)
		h[0], h[1] = 0x45, 0xc0
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(msg)))
		h[8], h[9] = 255, ProtocolNumber
		s, d := src.As4(), dst.As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		binary.BigEndian.PutUint16(h[10:], finishChecksum(sumWords(0, h)))
		return append(h, msg...)
	}
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(msg)))
	h[6], h[7] = ProtocolNumber, 255
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, msg...)
}

// writePcap writes raw-IP packets (LINKTYPE_RAW) to a pcap file.
func writePcap(t *testing.T, path string, packets ...[]byte) {
	var b bytes.Buffer
	le := binary.LittleEndian
	hdr := make([]byte, 24)
	le.PutUint32(hdr[0:], 0xa1b2c3d4)
	le.PutUint16(hdr[4:], 2)
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], 65535)
	le.PutUint32(hdr[20:], 101)
	b.Write(hdr)
	for i, p := range packets {
		rec := make([]byte, 16)
		le.PutUint32(rec[0:], uint32(1700000000+i))
		le.PutUint32(rec[8:], uint32(len(p)))
		le.PutUint32(rec[12:], uint32(len(p)))
		b.Write(rec)
		b.Write(p)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWiresharkAgrees has an independent decoder (tshark) read what Marshal
// writes: the fields and, for each checksum form, Wireshark's verdict.
// Wireshark 4.0 checks IPv4 VRRPv3 with the pseudo-header unless
// vrrp.v3_checksum_as_in_v2 is set, which selects the message-only form.
func TestWiresharkAgrees(t *testing.T) {
	tshark := needTool(t, "tshark")
	mk := func(src netip.Addr, dst netip.Addr, form ChecksumForm, a Advert) []byte {
		b, err := a.Marshal(src, dst, form)
		if err != nil {
			t.Fatal(err)
		}
		return ipPacket(src, dst, b)
	}
	pkts := [][]byte{
		mk(v4src, GroupIPv4, ChecksumPseudoHeader, Advert{Version: 3, Type: 1, VRID: 51, Priority: 200, MaxAdvertInterval: 100, Addresses: addrs("192.0.2.100", "192.0.2.101")}),
		mk(v4src, GroupIPv4, ChecksumRFC9568, Advert{Version: 3, Type: 1, VRID: 52, Priority: 0, MaxAdvertInterval: 1, Addresses: addrs("198.51.100.7")}),
		mk(v6src, GroupIPv6, ChecksumIPv6, Advert{Version: 3, Type: 1, VRID: 53, Priority: 255, MaxAdvertInterval: 4095, Addresses: addrs("fe80::1", "2001:db8::100")}),
	}
	path := filepath.Join(t.TempDir(), "vrrp.pcap")
	writePcap(t, path, pkts...)
	run := func(asInV2 bool) []string {
		pref := "vrrp.v3_checksum_as_in_v2:FALSE"
		if asInV2 {
			pref = "vrrp.v3_checksum_as_in_v2:TRUE"
		}
		cmd := exec.Command(tshark, "-n", "-r", path, "-o", pref, "-T", "fields", "-E", "separator=|",
			"-e", "vrrp.version", "-e", "vrrp.virt_rtr_id", "-e", "vrrp.prio", "-e", "vrrp.short_adver_int",
			"-e", "vrrp.ip_addr", "-e", "vrrp.ipv6_addr", "-e", "vrrp.checksum.status")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark: %v\n%s", err, out)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	// checksum.status: 1 good, 0 bad (Wireshark's proto_checksum_status).
	want := []string{
		"3|51|200|100|192.0.2.100,192.0.2.101||1",
		"3|52|0|1|198.51.100.7||0",
		"3|53|255|4095||fe80::1,2001:db8::100|1",
	}
	if diff := cmp.Diff(want, run(false)); diff != "" {
		t.Errorf("pseudo-header reading (-want +got):\n%s", diff)
	}
	want[0] = "3|51|200|100|192.0.2.100,192.0.2.101||0"
	want[1] = "3|52|0|1|198.51.100.7||1"
	if diff := cmp.Diff(want, run(true)); diff != "" {
		t.Errorf("message-only reading (-want +got):\n%s", diff)
	}
}
