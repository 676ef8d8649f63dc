package vip

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mwgc/mwgc/runtime/netlab"
)

func TestInvalidArguments(t *testing.T) {
	for _, p := range []netip.Prefix{{}, netip.MustParsePrefix("::ffff:192.0.2.1/128")} {
		if err := Add("lo", p); err == nil {
			t.Errorf("Add(lo, %v) succeeded", p)
		}
	}
	if err := Add("no-such-if0", netip.MustParsePrefix("192.0.2.1/32")); err == nil || !strings.Contains(err.Error(), "no-such-if0") {
		t.Errorf("Add on missing interface: %v", err)
	}
	if err := EnsureLinkLocal("lo", netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("EnsureLinkLocal accepted a global address")
	}
}

func TestAddRemoveIdempotentAndLeavesOthersAlone(t *testing.T) {
	lab := netlab.New(t, "a")
	lab.AddAddr("a", "192.0.2.11/24")
	lab.AddAddr("a", "2001:db8::11/64")
	before := lab.Addrs("a")
	ifname := lab.Ifname("a")

	for _, s := range []string{"192.0.2.100/24", "198.51.100.7/32", "2001:db8::100/64", "2001:db8:1::1/128"} {
		p := netip.MustParsePrefix(s)
		inNS(t, lab, func() error {
			for range 2 {
				if err := Add(ifname, p); err != nil {
					return err
				}
			}
			if ok, err := Has(ifname, p); err != nil || !ok {
				t.Errorf("Has(%v) after Add = %v, %v", p, ok, err)
			}
			return nil
		})
		if !lab.HasAddr("a", s) {
			t.Errorf("%s not on the interface after Add: %v", s, lab.Addrs("a"))
		}
		inNS(t, lab, func() error {
			for range 2 {
				if err := Remove(ifname, p); err != nil {
					return err
				}
			}
			if ok, err := Has(ifname, p); err != nil || ok {
				t.Errorf("Has(%v) after Remove = %v, %v", p, ok, err)
			}
			return nil
		})
		if after := lab.Addrs("a"); !slices.Equal(sorted(after), sorted(before)) {
			t.Errorf("after add+remove of %s: addresses %v, want %v", s, after, before)
		}
	}
}

func TestOtherPrefixLengthIsNotOurs(t *testing.T) {
	lab := netlab.New(t, "a")
	lab.AddAddr("a", "192.0.2.11/24")
	lab.AddAddr("a", "2001:db8::11/64")
	ifname := lab.Ifname("a")
	inNS(t, lab, func() error {
		for _, s := range []string{"192.0.2.11/32", "2001:db8::11/128"} {
			p := netip.MustParsePrefix(s)
			if ok, err := Has(ifname, p); err != nil || ok {
				t.Errorf("Has(%v) = %v, %v; want false (present only with another length)", p, ok, err)
			}
			if err := Remove(ifname, p); err != nil {
				t.Errorf("Remove(%v): %v", p, err)
			}
		}
		// IPv6 addresses are unique regardless of length: Add must say so.
		if err := Add(ifname, netip.MustParsePrefix("2001:db8::11/128")); err == nil {
			t.Error("Add of 2001:db8::11/128 over 2001:db8::11/64 reported success")
		}
		return nil
	})
	for _, s := range []string{"192.0.2.11/24", "2001:db8::11/64"} {
		if !lab.HasAddr("a", s) {
			t.Errorf("%s was removed: %v", s, lab.Addrs("a"))
		}
	}
}

// Removing a VIP that the kernel made the primary address of its subnet
// must not take the node's own (secondary) address in that subnet with it.
func TestRemovingPrimaryVIPKeepsNodeAddress(t *testing.T) {
	lab := netlab.New(t, "a")
	ifname := lab.Ifname("a")
	vip := netip.MustParsePrefix("192.0.2.100/24")
	inNS(t, lab, func() error { return Add(ifname, vip) })
	lab.AddAddr("a", "192.0.2.11/24") // now secondary to the VIP
	inNS(t, lab, func() error { return Remove(ifname, vip) })
	if got := lab.Addrs("a"); !slices.Contains(got, "192.0.2.11/24") || slices.Contains(got, "192.0.2.100/24") {
		t.Errorf("addresses after removing the primary VIP: %v; want 192.0.2.11/24 kept, VIP gone", got)
	}
}

// With /proc/sys read-only (systemd ProtectKernelTunables), Add still
// works and Remove puts back the node address the kernel took along.
func TestRemovingPrimaryVIPWithoutSysctlRestoresNodeAddress(t *testing.T) {
	defer func(orig func(string) error) { enablePromoteSecondaries = orig }(enablePromoteSecondaries)
	enablePromoteSecondaries = func(string) error { return errors.New("read-only file system") }

	lab := netlab.New(t, "a")
	ifname := lab.Ifname("a")
	vip := netip.MustParsePrefix("192.0.2.100/24")
	inNS(t, lab, func() error { return Add(ifname, vip) })
	lab.AddAddr("a", "192.0.2.11/24")
	lab.AddAddr("a", "192.0.2.12/24")
	if got := lab.Run("a", "sysctl", "-n", "net.ipv4.conf."+ifname+".promote_secondaries"); strings.TrimSpace(got) != "0" {
		t.Fatalf("promote_secondaries = %q; the test needs it off", got)
	}
	inNS(t, lab, func() error { return Remove(ifname, vip) })
	got := lab.Addrs("a")
	for _, want := range []string{"192.0.2.11/24", "192.0.2.12/24"} {
		if !slices.Contains(got, want) {
			t.Errorf("%s lost when removing the primary VIP: %v", want, got)
		}
	}
	if slices.Contains(got, "192.0.2.100/24") {
		t.Errorf("VIP still there: %v", got)
	}
}

func TestIPv6VIPUsableAtOnceWithDADOn(t *testing.T) {
	lab := netlab.New(t, "a")
	ifname := lab.Ifname("a")
	lab.Run("a", "sysctl", "-q", "-w", "net.ipv6.conf."+ifname+".accept_dad=1")
	vip := netip.MustParsePrefix("2001:db8::100/64")
	inNS(t, lab, func() error {
		if err := Add(ifname, vip); err != nil {
			return err
		}
		// Binding fails with EADDRNOTAVAIL while an address is tentative.
		c, err := net.ListenPacket("udp6", "[2001:db8::100]:0")
		if err != nil {
			t.Errorf("VIP not usable right after Add: %v", err)
			return nil
		}
		return c.Close()
	})
	out := lab.Run("a", "ip", "-6", "-o", "addr", "show", "dev", ifname)
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "2001:db8::100/64") {
			line = l
		}
	}
	if !strings.Contains(line, "nodad") || strings.Contains(line, "tentative") {
		t.Errorf("VIP line %q: want nodad and not tentative", line)
	}
}

func TestEnsureLinkLocal(t *testing.T) {
	lab := netlab.New(t, "a")
	ifname := lab.Ifname("a")
	ll := netip.MustParseAddr("fe80::5e:1")
	inNS(t, lab, func() error {
		for range 2 {
			if err := EnsureLinkLocal(ifname, ll); err != nil {
				return err
			}
		}
		got, err := List(ifname)
		if err != nil {
			return err
		}
		n := 0
		for _, p := range got {
			if p.Addr() == ll {
				n++
			}
		}
		if n != 1 {
			t.Errorf("List = %v; want fe80::5e:1 exactly once", got)
		}
		return nil
	})
	if !lab.HasAddr("a", "fe80::5e:1/64") {
		t.Errorf("link-local missing: %v", lab.Addrs("a"))
	}
}

func inNS(t *testing.T, lab *netlab.Lab, fn func() error) {
	t.Helper()
	if err := lab.Do("a", fn); err != nil {
		t.Fatal(err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
