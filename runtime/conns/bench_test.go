package conns

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// otherConns is how many connections a busy director's proxy holds on
// addresses other than the VIP being released. The client ends take one
// file descriptor each in this process (the hard limit here is 20,000);
// the server never accepts, so its ends are sockets without descriptors,
// established in the listener's queue, listed like any other.
const otherConns = 18000

// BenchmarkEnd times ending the 10 connections of a released VIP on a
// server that also holds otherConns unrelated connections, beside the real
// alternative (`ss -K -t src VIP`, as an operator or a notify script would
// run it) and beside listing every socket without the kernel's filter
// (what End did before it passed one).
func BenchmarkEnd(b *testing.B) {
	lab := netlab.New(b, "s", "c")
	lab.AddAddr("s", "192.0.2.1/24")
	lab.AddAddr("s", "192.0.2.100/24")
	for i := range 4 {
		lab.AddAddr("c", fmt.Sprintf("192.0.2.%d/24", 10+i))
	}
	lab.Run("s", "sysctl", "-qw", fmt.Sprintf("net.core.somaxconn=%d", otherConns+1000))
	ln := listenUnaccepted(b, lab, "s", 7001, otherConns+1000)
	defer unix.Close(ln)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	dialFrom := func(src, dst string) net.Conn {
		var c net.Conn
		err := lab.Do("c", func() (err error) {
			d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			c, err = d.Dial("tcp", dst)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	for i := range otherConns {
		held = append(held, dialFrom(fmt.Sprintf("192.0.2.%d", 10+i%4), "192.0.2.1:7001"))
	}
	vip := netip.MustParseAddr("192.0.2.100")
	connectVIP := func() []net.Conn {
		cs := make([]net.Conn, 10)
		for i := range cs {
			cs[i] = dialFrom("192.0.2.10", "192.0.2.100:7001")
		}
		return cs
	}
	run := func(b *testing.B, end func() (int, error)) {
		for b.Loop() {
			b.StopTimer()
			cs := connectVIP()
			b.StartTimer()
			n, err := end()
			b.StopTimer()
			if err != nil || (n >= 0 && n != len(cs)) {
				b.Fatalf("ended %d of %d: %v", n, len(cs), err)
			}
			for _, c := range cs {
				c.Close()
			}
			b.StartTimer()
		}
	}
	b.Run("mwgc", func(b *testing.B) {
		run(b, func() (n int, err error) {
			lab.Do("s", func() error { n, err = End(vip); return nil })
			return n, err
		})
	})
	b.Run("ss-K", func(b *testing.B) {
		run(b, func() (int, error) {
			out, err := lab.Command("s", "ss", "-K", "-t", "-H", "src", vip.String()).CombinedOutput()
			if err != nil {
				return 0, fmt.Errorf("ss -K: %v: %s", err, out)
			}
			return -1, nil
		})
	})
	b.Run("list-unfiltered", func(b *testing.B) {
		run(b, func() (int, error) {
			var err error
			lab.Do("s", func() error {
				for _, fam := range []uint8{unix.AF_INET6, unix.AF_INET} {
					if _, e := netlink.SocketDiagTCP(fam); e != nil {
						err = e
					}
				}
				return nil
			})
			// Only the listing is timed; the sockets are ended untimed.
			b.StopTimer()
			lab.Do("s", func() error { _, e := End(vip); return e })
			b.StartTimer()
			return -1, err
		})
	})
}

// listenUnaccepted listens on port of every address of node with a queue
// of backlog connections and never accepts.
func listenUnaccepted(b *testing.B, lab *netlab.Lab, node string, port, backlog int) int {
	var fd int
	err := lab.Do(node, func() (err error) {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err = unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
			return err
		}
		return unix.Listen(fd, backlog)
	})
	if err != nil {
		b.Fatal(err)
	}
	return fd
}
