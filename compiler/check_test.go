package compiler

import (
	"net/netip"
	"testing"
)

func TestIsHostAddr(t *testing.T) {
	for _, c := range []struct {
		prefix, addr string
		want         bool
	}{
		{"192.0.2.0/24", "192.0.2.1", true},
		{"192.0.2.0/24", "192.0.2.254", true},
		{"192.0.2.0/24", "192.0.2.0", false},   // network
		{"192.0.2.0/24", "192.0.2.255", false}, // broadcast
		{"192.0.2.0/24", "198.51.100.1", false},
		{"192.0.2.128/25", "192.0.2.127", false},
		{"192.0.2.0/31", "192.0.2.0", true}, // RFC 3021
		{"192.0.2.7/32", "192.0.2.7", true},
		{"2001:db8::/64", "2001:db8::1", true},
		{"2001:db8::/64", "2001:db8::", false}, // subnet-router anycast
		{"2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff", true},
		{"2001:db8::/64", "192.0.2.1", false},
		{"224.0.0.0/24", "224.0.0.18", false}, // multicast
		{"ff02::/16", "ff02::12", false},
		{"127.0.0.0/8", "127.0.0.1", false},
	} {
		if got := isHostAddr(netip.MustParsePrefix(c.prefix), netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("isHostAddr(%s, %s) = %v, want %v", c.prefix, c.addr, got, c.want)
		}
	}
	if got := isHostAddr(netip.Prefix{}, netip.MustParseAddr("192.0.2.1")); got {
		t.Error("no prefix for the family must not be a host address")
	}
}

func TestBroadcast(t *testing.T) {
	for p, want := range map[string]string{
		"192.0.2.0/24":    "192.0.2.255",
		"192.0.2.0/25":    "192.0.2.127",
		"203.0.113.64/26": "203.0.113.127",
		"192.0.2.7/32":    "192.0.2.7",
	} {
		if got := broadcast(netip.MustParsePrefix(p)); got.String() != want {
			t.Errorf("broadcast(%s) = %s, want %s", p, got, want)
		}
	}
}
