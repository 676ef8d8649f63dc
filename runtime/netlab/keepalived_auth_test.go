package netlab

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKeepalivedAuthConfig: the auth_hmac block renders as keepalived
// 2.4.3 documents it, and that build accepts it (-t) with a key file.
func TestKeepalivedAuthConfig(t *testing.T) {
	bin := Keepalived243(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "vrrp-1.key")
	if err := os.WriteFile(key, []byte("hex:"+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := KeepalivedConfig{Binary: bin, Instances: []KeepalivedInstance{{VRID: 51, Priority: 100, AdvertInterval: 100 * time.Millisecond,
		VIPs: []string{"192.0.2.100/24"}, AuthHMAC: &KeepalivedAuth{Keys: map[int]string{2: key, 1: key}, ActiveKey: 2, Mode: "permissive", Window: 7 * time.Second}}}}
	text, err := cfg.Render()
	if err != nil {
		t.Fatal(err)
	}
	want := "    auth_hmac {\n        key 1 file:" + key + "\n        key 2 file:" + key + "\n        active_key 2\n        mode permissive\n        time_window 7\n    }\n"
	if !strings.Contains(text, want) {
		t.Fatalf("rendered:\n%s\nwant the block:\n%s", text, want)
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkKeepalivedConfig(bin, conf); err != nil {
		t.Fatal(err)
	}
}

// TestForgerFrames: the observer decodes a forged advert with the source
// and TTL we chose, for IPv4 and IPv6; the IPv4 header checksum verifies.
func TestForgerFrames(t *testing.T) {
	l := New(t, "x")
	f := l.Forger("x", "")
	c := l.Capture("ip proto 112 or ip6 proto 112")
	v4 := []byte{0x31, 7, 255, 1, 0, 100, 0, 0, 192, 0, 2, 100}
	if err := f.SendVRRP(netip.MustParseAddr("192.0.2.11"), 255, v4); err != nil {
		t.Fatal(err)
	}
	v6 := append([]byte{0x31, 8, 255, 1, 0, 100, 0, 0}, netip.MustParseAddr("2001:db8::100").AsSlice()...)
	if err := f.SendVRRP(netip.MustParseAddr("fe80::11"), 255, v6); err != nil {
		t.Fatal(err)
	}
	ads, err := DecodeVRRP(c.Stop())
	if err != nil {
		t.Fatal(err)
	}
	if len(ads) != 2 || ads[0].Src != "192.0.2.11" || ads[0].TTL != 255 || ads[0].VRID != 7 || ads[1].Src != "fe80::11" || ads[1].VRID != 8 {
		t.Fatalf("decoded %+v", ads)
	}
	// The IPv4 header checksum we wrote sums to zero.
	frame := VRRPFrame(nil, f.MAC(), netip.MustParseAddr("192.0.2.11"), 255, v4)
	if got := ipChecksum(frame[14:34]); got != 0 {
		t.Fatalf("IPv4 header checksum does not verify: %#04x", got)
	}
}
