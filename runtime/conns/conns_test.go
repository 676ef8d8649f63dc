package conns

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// TestEnd: a server holding two addresses of each family, with a
// dual-stack listener (IPv4 connections on IPv6 sockets, v4-mapped) and
// listeners bound to single addresses; a client connects to each address
// by each listener. End(addr) resets exactly the connections to addr
// (the client reads ECONNRESET), keeps the others and every listener
// working, and counts what it ended.
func TestEnd(t *testing.T) {
	lab := netlab.New(t, "s", "c")
	for _, a := range []string{"192.0.2.1/24", "192.0.2.2/24", "2001:db8::1/64", "2001:db8::2/64"} {
		lab.AddAddr("s", a)
	}
	lab.AddAddr("c", "192.0.2.9/24")
	lab.AddAddr("c", "2001:db8::9/64")
	const dual, bound = 7001, 7002

	var lns []net.Listener
	listen := func(addr string) {
		t.Helper()
		if err := lab.Do("s", func() error {
			ln, err := net.Listen("tcp", addr)
			lns = append(lns, ln)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	listen(fmt.Sprintf(":%d", dual))
	listen(fmt.Sprintf("192.0.2.1:%d", bound))
	listen(fmt.Sprintf("[2001:db8::1]:%d", bound))
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(c, c); c.Close() }()
			}
		}()
		t.Cleanup(func() { ln.Close() })
	}
	dial := func(addr string) net.Conn {
		t.Helper()
		var c net.Conn
		if err := lab.Do("c", func() (err error) {
			c, err = net.DialTimeout("tcp", addr, 2*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if !echoes(c) {
			t.Fatalf("%s does not echo", addr)
		}
		return c
	}
	for _, tc := range []struct{ end, keep string }{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8::1", "2001:db8::2"},
	} {
		t.Run(tc.end, func(t *testing.T) {
			host := func(a string) string { return net.JoinHostPort(a, "") }
			ended := []net.Conn{dial(host(tc.end) + fmt.Sprint(dual)), dial(host(tc.end) + fmt.Sprint(bound))}
			kept := []net.Conn{dial(host(tc.keep) + fmt.Sprint(dual))}
			var n int
			var err error
			if err := lab.Do("s", func() error { n, err = End(netip.MustParseAddr(tc.end)); return nil }); err != nil {
				t.Fatal(err)
			}
			if err != nil {
				t.Fatalf("End(%s): %v", tc.end, err)
			}
			if n != len(ended) {
				t.Errorf("End(%s) ended %d sockets, want %d", tc.end, n, len(ended))
			}
			for _, c := range ended {
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, err := c.Read(make([]byte, 1))
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("connection to %v after End: read %v, want a reset", c.RemoteAddr(), err)
				}
			}
			for _, c := range kept {
				if !echoes(c) {
					t.Errorf("connection to %v broke, but End was for %s", c.RemoteAddr(), tc.end)
				}
			}
			// The listeners still take new connections on the ended address.
			dial(host(tc.end) + fmt.Sprint(dual))
			dial(host(tc.end) + fmt.Sprint(bound))
		})
	}
}

func echoes(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("x")); err != nil {
		return false
	}
	b := make([]byte, 1)
	_, err := io.ReadFull(c, b)
	return err == nil && b[0] == 'x'
}
