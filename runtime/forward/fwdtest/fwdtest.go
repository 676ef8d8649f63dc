// Package fwdtest is test support for traffic distribution in network
// namespaces (runtime/netlab): a stand-in proxy that answers with its
// node's name, and a client that asks from many source addresses and
// records who answered.
package fwdtest

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// Proxy is a stand-in for a node's proxy: a TCP server in the node's
// namespace. "GET /" answers the node's name; "GET /bytes/N" streams N
// bytes (a long download), slowly if the server was made with a pace.
type Proxy struct {
	ln   net.Listener
	name string

	mu    sync.Mutex
	peers map[netip.Addr]int // connections by source address
}

// Peers returns how many connections came from each source address.
func (p *Proxy) Peers() map[netip.Addr]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.peers)
}

// Serve starts a proxy for node on addr (e.g. "0.0.0.0:9090") in its
// namespace. It is closed at cleanup; Close closes it earlier (a proxy
// that stops serving).
func Serve(t testing.TB, l *netlab.Lab, node, addr string) *Proxy {
	t.Helper()
	var ln net.Listener
	if err := l.Do(node, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("fwdtest: listen on %s in %s: %v", addr, node, err)
	}
	p := &Proxy{ln: ln, name: node, peers: map[netip.Addr]int{}}
	go p.serve()
	t.Cleanup(func() { ln.Close() })
	return p
}

// Close stops the proxy: its port refuses connections from now on.
func (p *Proxy) Close() { p.ln.Close() }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *Proxy) handle(c net.Conn) {
	defer c.Close()
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		p.mu.Lock()
		p.peers[ap.Addr().Unmap()]++
		p.mu.Unlock()
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	f := strings.Fields(line)
	if len(f) >= 2 && strings.HasPrefix(f[1], "/bytes/") {
		n, _ := strconv.Atoi(strings.TrimPrefix(f[1], "/bytes/"))
		fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\nX-Node: %s\r\n\r\n", n, p.name)
		chunk := make([]byte, 32<<10)
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := c.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
		return
	}
	fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s\n", len(p.name)+1, p.name)
}

// Ask sends "GET /" to dst from src inside node's namespace and returns
// the name in the answer ("" and an error when nothing answered within
// timeout).
func Ask(src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	c, err := d.Dial("tcp4", dst.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	_, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok {
		return "", fmt.Errorf("no HTTP answer: %q", b)
	}
	return strings.TrimSpace(body), nil
}

// AskAll asks once from every client address, inside node's namespace
// (sequentially: sockets must be opened on the namespace's thread). The
// result maps each client to the name that answered, "" for none.
func AskAll(l *netlab.Lab, node string, clients []netip.Addr, dst netip.AddrPort, timeout time.Duration) map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(clients))
	l.Do(node, func() error {
		for _, c := range clients {
			name, _ := Ask(c, dst, timeout)
			out[c] = name
		}
		return nil
	})
	return out
}

// Clients returns n addresses from first on (same /24 arithmetic as IPv4
// integers), and adds them to node's eth0 with prefix length bits, in one
// `ip -batch`.
func Clients(t testing.TB, l *netlab.Lab, node string, first netip.Addr, n, bits int) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	var batch strings.Builder
	a := first
	for range n {
		out = append(out, a)
		fmt.Fprintf(&batch, "addr add %s/%d dev eth0\n", a, bits)
		a = a.Next()
	}
	cmd := exec.Command("ip", "-n", l.NS(node), "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fwdtest: adding client addresses: %v\n%s", err, out)
	}
	return out
}

// Tally counts answers per name ("" = no answer).
func Tally(answers map[netip.Addr]string) map[string]int {
	c := map[string]int{}
	for _, n := range answers {
		c[n]++
	}
	return c
}

// Spread is max/min of the counts of the given names (0 if one got none).
func Spread(counts map[string]int, names []string) float64 {
	lo, hi := -1, 0
	for _, n := range names {
		v := counts[n]
		if lo < 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	if lo <= 0 {
		return 0
	}
	return float64(hi) / float64(lo)
}
