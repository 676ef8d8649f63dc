// Command mgmt-loadtest measures what a director costs: one process runs
// the agent (runtime/agent, with the management protocol on real UDP
// sockets and an inert VRRP group that makes it Active at once) as the
// Active director of N scanning nodes on loopback; a
// child process runs N answering engines, each sending from its own
// 127.0.x.y address (all of 127/8 is loopback on Linux). The director's CPU
// is read with getrusage(RUSAGE_SELF) over the measuring window, so the
// answerers' work is not counted.
//
// Run as root (SO_BINDTODEVICE):
//
//	go run ./runtime/mgmt/cmd/mgmt-loadtest -nodes 1000 -interval 1s -measure 30s
//
// The answerers cannot bind the plan's port on lo (the director holds the
// wildcard address there), so they do not hear the director's broadcast;
// the child feeds its engines a discovery it signs itself, once per
// interval. The director still sends its broadcast (and drops its own copy
// looped back), so its work per interval is what it is in production: one
// discovery out, N answers in, the table file rewritten.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/mwgc/mwgc/runtime/agent"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/mgmt/wire"
	"github.com/mwgc/mwgc/runtime/nft"
	"github.com/mwgc/mwgc/runtime/plan"
)

var (
	role     = flag.String("role", "director", "director (measures) or answerers (internal: started by the director)")
	nodes    = flag.Int("nodes", 1000, "scanning nodes")
	interval = flag.Duration("interval", time.Second, "discovery interval")
	warmup   = flag.Duration("warmup", 5*time.Second, "time after every node is up before measuring")
	measure  = flag.Duration("measure", 30*time.Second, "measuring window")
	port     = flag.Int("port", 0, "UDP port (0: pick a free one)")
	keyFile  = flag.String("key", "", "key file (internal)")
	cpuProf  = flag.String("cpuprofile", "", "write the director's CPU profile of the measuring window here")
)

func main() {
	flag.Parse()
	var err error
	if *role == "answerers" {
		err = answerers()
	} else {
		// As mwgc-agent runs: one P, unless the environment says otherwise.
		if os.Getenv("GOMAXPROCS") == "" {
			runtime.GOMAXPROCS(1)
		}
		err = director()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mgmt-loadtest:", err)
		os.Exit(1)
	}
}

func memberAddr(i int) netip.Addr { // i = 0 is the director
	n := i + 1
	return netip.AddrFrom4([4]byte{127, 0, byte(n >> 8), byte(n)})
}

func members(n int) []plan.Member {
	ms := []plan.Member{{Name: "dir-a", Address: memberAddr(0), Director: true}}
	for i := 1; i <= n; i++ {
		ms = append(ms, plan.Member{Name: fmt.Sprintf("scan-%04d", i), Address: memberAddr(i)})
	}
	return ms
}

func director() error {
	dir, err := os.MkdirTemp("", "mgmt-loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	key := make([]byte, 32)
	rand.Read(key)
	kf := filepath.Join(dir, "mgmt.key")
	if err := os.WriteFile(kf, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return err
	}
	if *port == 0 {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		*port = c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
	}
	p := &plan.Plan{
		APIVersion: plan.APIVersion, Cluster: "load", Node: "dir-a", Mode: plan.ModeTransparentRouter,
		Interfaces: []plan.Interface{{Name: "lo", Segment: "mgmt", Addresses: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}}},
		// The owner of an inert VIP: Active at once, so it discovers.
		VRRP: &plan.VRRP{Priority: 255, Announce: plan.Announce{Count: 1}, Groups: []plan.Group{{
			Name: "inert", VRID: 1, Interface: "lo", Family: plan.FamilyIPv4, Version: 3,
			AdvertInterval: plan.Duration(time.Second), Checksum: plan.ChecksumRFC9568, Source: memberAddr(0),
			VIPs: []netip.Prefix{netip.MustParsePrefix("127.255.255.254/8")},
		}}},
		Management: &plan.Management{
			Interface: "lo", Address: memberAddr(0), Broadcast: netip.MustParseAddr("127.255.255.255"),
			Port: *port, DiscoveryInterval: plan.Duration(*interval), DeadAfter: 3,
			KeyFile: kf, TableFile: filepath.Join(dir, "table.json"), Members: members(*nodes),
		},
	}
	b, err := plan.Encode(p)
	if err != nil {
		return err
	}
	planFile := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(planFile, b, 0o644); err != nil {
		return err
	}
	ag, err := agent.New(agent.Config{PlanPath: planFile, Network: inertVRRP{},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), NoWatch: true})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go ag.Run(ctx)
	status := func() mgmt.Status {
		if st := ag.Status(); st != nil {
			if ms, ok := st.Management.(mgmt.Status); ok {
				return ms
			}
		}
		return mgmt.Status{}
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, "-role", "answerers", "-nodes", strconv.Itoa(*nodes), "-interval", interval.String(),
		"-port", strconv.Itoa(*port), "-key", kf)
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { child.Process.Kill(); child.Wait() }()

	start := time.Now()
	for {
		st := status()
		if st.Counts.Up == *nodes+1 {
			fmt.Printf("all %d nodes up %v after the director became Active (answerers start after it)\n", *nodes, time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > 10**interval+10*time.Second {
			return fmt.Errorf("only %d of %d nodes up after %v; drops %v; kernel socket drops %s",
				st.Counts.Up, *nodes+1, time.Since(start), nonZero(st.Stats.Drops), socketDrops(*port))
		}
		time.Sleep(*interval / 10)
	}
	time.Sleep(*warmup)

	before := status().Stats
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
	}
	r0, t0 := rusage(), time.Now()
	time.Sleep(*measure)
	r1, elapsed := rusage(), time.Since(t0)
	if *cpuProf != "" {
		pprof.StopCPUProfile()
	}
	st := status()

	cpu := (r1.user + r1.sys) - (r0.user + r0.sys)
	intervals := float64(elapsed) / float64(*interval)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	answers := st.Stats.AnswersReceived - before.AnswersReceived
	fmt.Printf("nodes %d, interval %v, GOMAXPROCS %d, measured %v (%.1f intervals)\n", *nodes, *interval, runtime.GOMAXPROCS(0), elapsed.Round(time.Millisecond), intervals)
	fmt.Printf("director CPU: %v total, %v per interval, %.3f%% of one core\n",
		cpu.Round(time.Microsecond), (time.Duration(float64(cpu) / intervals)).Round(time.Microsecond), 100*float64(cpu)/float64(elapsed))
	fmt.Printf("  user %v, system %v; context switches per interval: %.0f voluntary, %.0f involuntary\n",
		(r1.user - r0.user).Round(time.Millisecond), (r1.sys - r0.sys).Round(time.Millisecond),
		float64(r1.volSwitch-r0.volSwitch)/intervals, float64(r1.invSwitch-r0.invSwitch)/intervals)
	fmt.Printf("answers received %d (%.1f per interval), discoveries sent %d\n",
		answers, float64(answers)/intervals, st.Stats.DiscoveriesSent-before.DiscoveriesSent)
	fmt.Printf("director memory: RSS %s, Go heap in use %.1f MiB, Go sys %.1f MiB\n",
		vmRSS(), float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20))
	fmt.Printf("table: up %d, down %d, unseen %d; drops %v; send errors %d; kernel socket drops %s\n",
		st.Counts.Up, st.Counts.Down, st.Counts.Unseen, nonZero(st.Stats.Drops), st.Stats.SendErrors, socketDrops(*port))
	if st.Counts.Up != *nodes+1 {
		return fmt.Errorf("%d nodes up at the end, want %d", st.Counts.Up, *nodes+1)
	}
	return nil
}

// inertVRRP is the Linux network with the VRRP part left out: the
// group's socket never receives, VIPs and announcements go nowhere, and the
// link of lo is up. The management socket is real.
type inertVRRP struct{ agent.LinuxNetwork }

func (inertVRRP) Listen(string, bool, netip.Addr) (agent.PacketConn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	unix.Close(fds[1]) // nothing will ever be written to fds[0]
	return inertConn(fds[0]), nil
}

func (inertVRRP) AddVIP(string, netip.Prefix) error             { return nil }
func (inertVRRP) RemoveVIP(string, netip.Prefix) error          { return nil }
func (inertVRRP) EndConnections(netip.Addr) (int, error)        { return 0, nil }
func (inertVRRP) EnsureLinkLocal(string, netip.Addr) error      { return nil }
func (inertVRRP) ApplyRules(nft.State) error                    { return nil }
func (inertVRRP) CleanRules() error                             { return nil }
func (inertVRRP) OpenAnnouncer(string) (agent.Announcer, error) { return inertAnnouncer{}, nil }
func (inertVRRP) WatchLinks(_ context.Context, report agent.LinkReport, _ func(error)) error {
	report(true, []agent.LinkState{{Index: 1, Name: "lo", Up: true}})
	return nil
}

type inertConn int

func (c inertConn) Fd() int { return int(c) }
func (c inertConn) TryReadPacket([]byte) (int, netip.Addr, netip.Addr, int, error) {
	return 0, netip.Addr{}, netip.Addr{}, 0, agent.ErrWouldBlock
}
func (c inertConn) WritePacket([]byte) error { return nil }
func (c inertConn) Close() error             { return unix.Close(int(c)) }

type inertAnnouncer struct{}

func (inertAnnouncer) Announce(netip.Addr) error { return nil }
func (inertAnnouncer) Close() error              { return nil }

func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// socketDrops reads the kernel's drop counter of the director's socket
// (last column of /proc/net/udp), e.g. receive buffer overflows.
func socketDrops(port int) string {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return "?"
	}
	suffix := fmt.Sprintf(":%04X", port)
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 12 && f[1] == "00000000"+suffix {
			return f[len(f)-1]
		}
	}
	return "?"
}

type usage struct {
	user, sys            time.Duration
	volSwitch, invSwitch int64
}

func rusage() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return usage{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), ru.Nvcsw, ru.Nivcsw}
}

func vmRSS() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	return "?"
}

// answerers runs the N answering engines in one process.
func answerers() error {
	data, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	keys, err := wire.ParseKeyFile(data)
	if err != nil {
		return err
	}
	ms := members(*nodes)
	var em []engine.Member
	for _, m := range ms {
		em = append(em, engine.Member{Name: m.Name, Address: m.Address, Director: m.Director})
	}
	engines := make([]*engine.Engine, *nodes)
	for i := range engines {
		m := ms[i+1]
		cfg := engine.Config{
			Cluster: "load", Node: m.Name, Address: m.Address, Broadcast: netip.MustParseAddr("127.255.255.255"),
			Addresses: []netip.Prefix{netip.PrefixFrom(m.Address, 8)}, Interval: *interval, DeadAfter: 3,
			Keys: keys, Members: em,
		}
		var seed [8]byte
		rand.Read(seed[:])
		boot := binary.BigEndian.Uint64(seed[:]) | 1
		if engines[i], err = engine.New(cfg, boot, mrand.New(mrand.NewPCG(boot, uint64(i)))); err != nil {
			return err
		}
	}
	raw, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return err
	}
	pc := ipv4.NewPacketConn(raw)
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: *port}
	send := func(from netip.Addr, acts []engine.Action) {
		for _, a := range acts {
			if s, ok := a.(engine.Send); ok && s.To == memberAddr(0) {
				if _, err := pc.WriteTo(s.Data, &ipv4.ControlMessage{Src: from.AsSlice()}, dst); err != nil {
					fmt.Fprintln(os.Stderr, "answerer send:", err)
				}
			}
		}
	}
	// The discovery the director would broadcast, signed here, once per interval.
	var dseq uint64
	discovery := func(now time.Time) []byte {
		dseq++
		b, err := wire.Seal(&wire.Message{
			Header:    wire.Header{Type: wire.TypeDiscovery, BootID: 0xd1, Seq: dseq, Time: now.UnixMilli()},
			Discovery: &wire.Discovery{Cluster: "load", Node: "dir-a", IntervalMillis: uint32(*interval / time.Millisecond)},
		}, keys[0])
		if err != nil {
			panic(err)
		}
		return b
	}
	nextDiscovery := time.Now()
	for {
		now := time.Now()
		if !now.Before(nextDiscovery) {
			d := discovery(now)
			for i, e := range engines {
				send(ms[i+1].Address, e.Step(now, engine.Packet{Src: memberAddr(0), Data: bytes.Clone(d)}))
			}
			nextDiscovery = nextDiscovery.Add(*interval)
		}
		next := nextDiscovery
		for i, e := range engines {
			d := e.Deadline()
			if !d.IsZero() && !d.After(now) {
				send(ms[i+1].Address, e.Step(now, engine.Tick{}))
				d = e.Deadline()
			}
			if !d.IsZero() && d.Before(next) {
				next = d
			}
		}
		time.Sleep(max(time.Until(next), 0))
	}
}
