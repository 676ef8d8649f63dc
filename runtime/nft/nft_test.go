package nft

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// TestAcceptFilter: on node a, the VIPs of a group without Accept_Mode are
// not accepted (a TCP connection from b to a listener on every address of
// a gets no answer there) while a's own addresses are, and
// neighbour discovery for the IPv6 VIP still works; a foreign table is
// left alone; Apply of nothing and Clean remove mwgc's tables, leftovers of
// other names included.
func TestAcceptFilter(t *testing.T) {
	netlab.Require(t, "nft")
	lab := netlab.New(t, "a", "b")
	lab.AddAddr("a", "192.0.2.1/24")
	lab.AddAddr("b", "192.0.2.2/24")
	lab.AddAddr("a", "2001:db8::1/64")
	lab.AddAddr("b", "2001:db8::2/64")
	lab.AddAddr("a", "192.0.2.100/24")
	lab.AddAddr("a", "2001:db8::100/64")
	lab.Run("a", "nft", "add", "table", "inet", "other")
	lab.Run("a", "nft", "add", "table", "ip", "mwgc-leftover")

	var ln net.Listener
	if err := lab.Do("a", func() (err error) { ln, err = net.Listen("tcp", "[::]:8080"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// ping connects; a dropped SYN is retried only after a second, so a
	// filtered address fails within the short wait, while an open one gets
	// the long wait a loaded machine may need.
	reach := func(dst string, wait time.Duration) bool {
		t.Helper()
		err := lab.Do("b", func() error {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(dst, "8080"), wait)
			if err == nil {
				c.Close()
			}
			return err
		})
		return err == nil
	}
	ping := func(dst string) bool { t.Helper(); return reach(dst, 3*time.Second) }
	blocked := func(dst string) bool { t.Helper(); return !reach(dst, 700*time.Millisecond) }
	apply := func(s State) {
		t.Helper()
		if err := lab.Do("a", func() error { return New().Apply(s) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, dst := range []string{"192.0.2.100", "2001:db8::100"} {
		if !ping(dst) {
			t.Fatalf("control: %s does not answer without a filter", dst)
		}
	}

	apply(State{DropVIPs: []netip.Addr{netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8::100")}})
	lab.Run("b", "ip", "neigh", "flush", "dev", "eth0")
	for _, dst := range []string{"192.0.2.100", "2001:db8::100"} {
		if !blocked(dst) {
			t.Errorf("%s answered with the filter", dst)
		}
	}
	for _, dst := range []string{"192.0.2.1", "2001:db8::1"} {
		if !ping(dst) {
			t.Errorf("%s (not filtered) does not answer", dst)
		}
	}
	// b resolved the IPv6 VIP although its ping went unanswered: the
	// neighbour solicitation got through and a answered it.
	if neigh := lab.Run("b", "ip", "-6", "neigh", "show", "2001:db8::100"); !strings.Contains(neigh, "lladdr") {
		t.Errorf("b has no neighbour entry for the IPv6 VIP: %q", neigh)
	}
	tables := lab.Run("a", "nft", "list", "tables")
	for _, want := range []string{"table inet mwgc", "table inet other", "table ip mwgc-leftover"} {
		if !strings.Contains(tables, want) {
			t.Errorf("tables after Apply: %q lacks %q", tables, want)
		}
	}

	// Apply again with one VIP less: one transaction replaces the table.
	apply(State{DropVIPs: []netip.Addr{netip.MustParseAddr("2001:db8::100")}})
	if !ping("192.0.2.100") || !blocked("2001:db8::100") {
		t.Error("after the second Apply: 192.0.2.100 must answer, 2001:db8::100 must not")
	}

	apply(State{})
	if !ping("192.0.2.100") || !ping("2001:db8::100") {
		t.Error("the VIPs do not answer after Apply of nothing")
	}
	if tables := lab.Run("a", "nft", "list", "tables"); strings.Contains(tables, "inet mwgc\n") || !strings.Contains(tables, "inet other") {
		t.Errorf("tables after Apply of nothing: %q", tables)
	}
	if err := lab.Do("a", func() error { return New().Clean() }); err != nil {
		t.Fatal(err)
	}
	tables = lab.Run("a", "nft", "list", "tables")
	if strings.Contains(tables, "mwgc") || !strings.Contains(tables, "table inet other") {
		t.Errorf("tables after Clean: %q, want only the foreign one", tables)
	}
}

// TestApplyRefusesBadState: an address that cannot be filtered is refused
// before anything changes.
func TestApplyRefusesBadState(t *testing.T) {
	netlab.Require(t, "nft")
	lab := netlab.New(t, "a")
	err := lab.Do("a", func() error {
		return New().Apply(State{DropVIPs: []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.1")}})
	})
	if err == nil {
		t.Fatal("an IPv4-mapped address was accepted")
	}
	if tables := lab.Run("a", "nft", "list", "tables"); strings.Contains(tables, "mwgc") {
		t.Errorf("a refused state left tables: %q", tables)
	}
}

func TestStateEqual(t *testing.T) {
	a := State{DropVIPs: []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.1")}}
	b := State{DropVIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.1")}}
	if !a.Equal(b) || a.Equal(State{}) || !(State{}).IsZero() || a.IsZero() {
		t.Error("Equal/IsZero disagree with the sets")
	}
}
