package netlab

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
)

// stopGrace lets packets already on their way through veth and bridge
// reach the observer before Stop sends its end marker.
const stopGrace = 50 * time.Millisecond

// markerEtherType is IEEE 802's "local experimental" EtherType. Stop sends
// one broadcast frame of it from the observer and waits until tcpdump has
// written it: then every packet before it is in the file too, however far
// a loaded machine let tcpdump fall behind. Decoders hide these frames.
const markerEtherType = 0x88b5

// Capture is a tcpdump running in the observer namespace, writing every
// packet at once (-U) to a pcap file.
type Capture struct {
	lab     *Lab
	path    string
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
	stderr  strings.Builder
	ifname  string // observer interface
}

// Capture starts tcpdump on the observer's port of the bridge with a pcap
// filter (e.g. "vrrp", "arp or icmp6"; "" captures everything). It returns
// once tcpdump is listening, so packets sent afterwards are captured.
func (l *Lab) Capture(filter string) *Capture {
	l.t.Helper()
	return l.CaptureOn(mainSegment, filter)
}

// CaptureOn captures on another segment (see AddSegment); "main" is eth0's.
func (l *Lab) CaptureOn(segment, filter string) *Capture {
	l.t.Helper()
	obsIf := nodeIfname
	if segment != mainSegment {
		if l.segments[segment] == "" {
			l.t.Fatalf("netlab: unknown segment %q", segment)
		}
		obsIf = segment
	}
	f, err := os.CreateTemp(l.dir, "capture-*.pcap")
	if err != nil {
		l.t.Fatalf("netlab: capture file: %v", err)
	}
	path := f.Name()
	f.Close()
	// -Z root: Debian's tcpdump otherwise drops to user tcpdump and cannot
	// write into the test's private temp directory.
	// --immediate-mode: without it the kernel hands packets over in blocks
	// up to a second late, and a Stop soon after the last packet loses them.
	args := []string{"-i", obsIf, "-n", "-U", "--immediate-mode", "-Z", "root", "-w", path}
	if filter != "" {
		args = append(args, fmt.Sprintf("(%s) or (ether proto 0x%04x)", filter, markerEtherType))
	}
	cmd := l.Command(observerNode, "tcpdump", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		l.t.Fatalf("netlab: tcpdump: %v", err)
	}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("netlab: start tcpdump: %v", err)
	}
	c := &Capture{lab: l, path: path, cmd: cmd, done: make(chan struct{}), ifname: obsIf}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			c.stderr.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "listening on") {
				close(listening)
				signalled = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(c.done)
	}()
	l.mu.Lock()
	l.captures = append(l.captures, c)
	l.mu.Unlock()
	select {
	case <-listening:
	case <-c.done:
		l.t.Fatalf("netlab: tcpdump exited before listening: %s", c.stderr.String())
	case <-time.After(10 * time.Second):
		l.t.Fatalf("netlab: tcpdump not listening after 10s")
	}
	return c
}

// Path is the pcap file (complete only after Stop).
func (c *Capture) Path() string { return c.path }

// Stop ends the capture, waits for tcpdump to flush, and returns the pcap path.
func (c *Capture) Stop() (pcapPath string) {
	c.stop()
	return c.path
}

func (c *Capture) stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	time.Sleep(stopGrace)
	if err := c.sendMarkerAndWait(30 * time.Second); err != nil {
		c.lab.t.Logf("netlab: capture %s may lack its last packets: %v", c.path, err)
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// sendMarkerAndWait sends a unique marker frame from the observer and
// waits until it shows up in the pcap file.
func (c *Capture) sendMarkerAndWait(timeout time.Duration) error {
	var token [16]byte
	if _, err := rand.Read(token[:]); err != nil {
		return err
	}
	payload := append([]byte("mwgc-netlab-end:"), token[:]...)
	err := c.lab.Do(observerNode, func() error {
		ifi, err := net.InterfaceByName(c.ifname)
		if err != nil {
			return err
		}
		pc, err := packet.Listen(ifi, packet.Raw, markerEtherType, nil)
		if err != nil {
			return err
		}
		defer pc.Close()
		f := &ethernet.Frame{Destination: ethernet.Broadcast, Source: ifi.HardwareAddr,
			EtherType: markerEtherType, Payload: payload}
		b, err := f.MarshalBinary()
		if err != nil {
			return err
		}
		_, err = pc.WriteTo(b, &packet.Addr{HardwareAddr: ethernet.Broadcast})
		return err
	})
	if err != nil {
		return fmt.Errorf("send end marker: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		if b, _ := os.ReadFile(c.path); bytes.Contains(b, payload) {
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("tcpdump exited: %s", c.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("end marker not captured within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Decode runs tshark over a pcap file with a display filter and returns, per
// matching frame, the values of the requested fields (tshark -T fields).
// Fields that occur more than once in a frame are joined with ",".
func Decode(pcapPath, displayFilter string, fields ...string) ([][]string, error) {
	args := []string{"-r", pcapPath, "-n", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	hideMarkers := fmt.Sprintf("not eth.type == 0x%04x", markerEtherType)
	if displayFilter != "" {
		args = append(args, "-Y", "("+displayFilter+") and "+hideMarkers)
	} else {
		args = append(args, "-Y", hideMarkers)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command("tshark", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tshark %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		row := strings.Split(line, "\t")
		for len(row) < len(fields) {
			row = append(row, "")
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// VRRPAdvert is one VRRP packet as decoded by tshark.
type VRRPAdvert struct {
	Time        time.Time
	Src, Dst    string
	TTL         int // IPv4 TTL or IPv6 hop limit
	Version     int
	Type        int
	VRID        int
	Priority    int
	Interval    int // centiseconds (VRRPv3 max advert interval)
	Addresses   []string
	ChecksumOK  bool // tshark's checksum status is "good"
	ChecksumRaw string
}

// DecodeVRRP returns every VRRP packet in the pcap in capture order.
func DecodeVRRP(pcapPath string) ([]VRRPAdvert, error) {
	rows, err := Decode(pcapPath, "vrrp",
		"frame.time_epoch", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "ip.ttl", "ipv6.hlim",
		"vrrp.version", "vrrp.type", "vrrp.virt_rtr_id", "vrrp.prio", "vrrp.short_adver_int",
		"vrrp.ip_addr", "vrrp.ipv6_addr", "vrrp.checksum.status", "vrrp.checksum")
	if err != nil {
		return nil, err
	}
	var ads []VRRPAdvert
	for _, r := range rows {
		a := VRRPAdvert{
			Time:        epoch(r[0]),
			Src:         first(r[1], r[2]),
			Dst:         first(r[3], r[4]),
			TTL:         atoi(first(r[5], r[6])),
			Version:     atoi(r[7]),
			Type:        atoi(r[8]),
			VRID:        atoi(r[9]),
			Priority:    atoi(r[10]),
			Interval:    atoi(r[11]),
			Addresses:   split(first(r[12], r[13])),
			ChecksumOK:  r[14] == "1", // tshark: 0 bad, 1 good, 2 unverified
			ChecksumRaw: r[15],
		}
		ads = append(ads, a)
	}
	return ads, nil
}

// ARPPacket is one ARP packet as decoded by tshark.
type ARPPacket struct {
	Time                time.Time
	EthSrc, EthDst      string
	Opcode              int // 1 request, 2 reply
	SenderMAC, SenderIP string
	TargetMAC, TargetIP string
	Gratuitous          bool
}

// DecodeARP returns every ARP packet in the pcap.
func DecodeARP(pcapPath string) ([]ARPPacket, error) {
	rows, err := Decode(pcapPath, "arp", "frame.time_epoch", "eth.src", "eth.dst", "arp.opcode",
		"arp.src.hw_mac", "arp.src.proto_ipv4", "arp.dst.hw_mac", "arp.dst.proto_ipv4", "arp.isgratuitous")
	if err != nil {
		return nil, err
	}
	var ps []ARPPacket
	for _, r := range rows {
		ps = append(ps, ARPPacket{Time: epoch(r[0]), EthSrc: r[1], EthDst: r[2], Opcode: atoi(r[3]),
			SenderMAC: r[4], SenderIP: r[5], TargetMAC: r[6], TargetIP: r[7], Gratuitous: isTrue(r[8])})
	}
	return ps, nil
}

// NAPacket is one ICMPv6 neighbour advertisement as decoded by tshark.
type NAPacket struct {
	Time                        time.Time
	EthSrc, EthDst              string
	Src, Dst                    string
	HopLimit                    int
	Target                      string
	Router, Solicited, Override bool
	TargetLinkAddr              string // target link-layer address option
}

// DecodeNA returns every neighbour advertisement in the pcap.
func DecodeNA(pcapPath string) ([]NAPacket, error) {
	rows, err := Decode(pcapPath, "icmpv6.type == 136", "frame.time_epoch", "eth.src", "eth.dst",
		"ipv6.src", "ipv6.dst", "ipv6.hlim", "icmpv6.nd.na.target_address",
		"icmpv6.nd.na.flag.r", "icmpv6.nd.na.flag.s", "icmpv6.nd.na.flag.o", "icmpv6.opt.linkaddr")
	if err != nil {
		return nil, err
	}
	var ps []NAPacket
	for _, r := range rows {
		ps = append(ps, NAPacket{Time: epoch(r[0]), EthSrc: r[1], EthDst: r[2], Src: r[3], Dst: r[4],
			HopLimit: atoi(r[5]), Target: r[6], Router: isTrue(r[7]), Solicited: isTrue(r[8]),
			Override: isTrue(r[9]), TargetLinkAddr: r[10]})
	}
	return ps, nil
}

func epoch(s string) time.Time {
	sec, frac, _ := strings.Cut(s, ".")
	secs, _ := strconv.ParseInt(sec, 10, 64)
	frac = (frac + "000000000")[:9]
	nanos, _ := strconv.ParseInt(frac, 10, 64)
	return time.Unix(secs, nanos)
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		if u, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 32); err == nil && strings.HasPrefix(s, "0x") {
			return int(u)
		}
		return -1
	}
	return n
}

func isTrue(s string) bool { return s == "1" || s == "True" || s == "true" }

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
