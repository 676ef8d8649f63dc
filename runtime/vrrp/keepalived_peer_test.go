package vrrp

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperSendAdverts is not a test: TestKeepalivedAcceptsOurAdverts runs
// the test binary again inside a namespace with this test selected, to send
// adverts from a raw socket there.
func TestHelperSendAdverts(t *testing.T) {
	msgHex := os.Getenv("VRRP_HELPER_ADVERT")
	if msgHex == "" {
		return // not started as a helper
	}
	msg, err := hex.DecodeString(msgHex)
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr(os.Getenv("VRRP_HELPER_SRC"))
	ifname := os.Getenv("VRRP_HELPER_IF")
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	var to syscall.Sockaddr
	if src.Is4() {
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, ProtocolNumber)
		if err == nil {
			syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_TTL, RequiredTTL)
			syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_MULTICAST_TTL, RequiredTTL)
			err = syscall.Bind(fd, &syscall.SockaddrInet4{Addr: src.As4()})
		}
		to = &syscall.SockaddrInet4{Addr: GroupIPv4.As4()}
	} else {
		fd, err = syscall.Socket(syscall.AF_INET6, syscall.SOCK_RAW, ProtocolNumber)
		if err == nil {
			syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, RequiredTTL)
			syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_HOPS, RequiredTTL)
			err = syscall.Bind(fd, &syscall.SockaddrInet6{Addr: src.As16(), ZoneId: uint32(ifi.Index)})
		}
		to = &syscall.SockaddrInet6{Addr: GroupIPv6.As16(), ZoneId: uint32(ifi.Index)}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.BindToDevice(fd, ifname); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ { // 2 s at 100 ms
		if err := syscall.Sendto(fd, msg, 0, to); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKeepalivedAcceptsOurAdverts puts keepalived (priority 200) and our
// encoder (priority 250) on one veth link, each in a namespace: keepalived
// must give up its VIP while our adverts flow, for IPv4 with the
// pseudo-header checksum (its default form) and for IPv6. Whether it also
// accepts the message-only form is logged, as a fact for mixed clusters.
func TestKeepalivedAcceptsOurAdverts(t *testing.T) {
	needRootLab(t, "ip", "keepalived")
	suffix := fmt.Sprintf("%06x", rand.IntN(1<<24))
	nsKA, nsUs := "vrrpka-"+suffix, "vrrpus-"+suffix
	dir := t.TempDir()
	for _, ns := range []string{nsKA, nsUs} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "-n", nsKA, "link", "add", "ka0", "type", "veth", "peer", "name", "us0", "netns", nsUs)
	run(t, "ip", "-n", nsKA, "addr", "add", "192.0.2.11/24", "dev", "ka0")
	run(t, "ip", "-n", nsKA, "addr", "add", "fe80::11/64", "dev", "ka0", "nodad")
	run(t, "ip", "-n", nsUs, "addr", "add", "192.0.2.12/24", "dev", "us0")
	run(t, "ip", "-n", nsUs, "addr", "add", "fe80::12/64", "dev", "us0", "nodad")
	run(t, "ip", "-n", nsKA, "link", "set", "ka0", "up")
	run(t, "ip", "-n", nsUs, "link", "set", "us0", "up")

	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(`global_defs {
	vrrp_version 3
	enable_script_security
}
vrrp_instance v4 {
	state BACKUP
	interface ka0
	virtual_router_id 61
	priority 200
	advert_int 0.1
	virtual_ipaddress {
		192.0.2.100/24
	}
}
vrrp_instance v6 {
	state BACKUP
	interface ka0
	virtual_router_id 62
	priority 200
	advert_int 0.1
	virtual_ipaddress {
		2001:db8::100/64
	}
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ka := exec.Command("ip", "netns", "exec", nsKA, "keepalived", "-n", "-l", "-P", "-f", conf,
		"-p", filepath.Join(dir, "ka.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
	if err := ka.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ka.Process.Signal(os.Interrupt)
		ka.Wait()
	})

	hasVIP := func(vip string) bool {
		out, err := exec.Command("ip", "-n", nsKA, "addr", "show", "dev", "ka0").CombinedOutput()
		if err != nil {
			t.Fatalf("ip addr: %v\n%s", err, out)
		}
		return strings.Contains(string(out), " "+vip+"/")
	}
	waitVIP := func(vip string, want bool, within time.Duration) bool {
		for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if hasVIP(vip) == want {
				return true
			}
		}
		return false
	}
	// sendOurs runs the helper in our namespace; it returns at once and the
	// caller waits on the command.
	sendOurs := func(src netip.Addr, vrid uint8, vip string, form ChecksumForm) *exec.Cmd {
		dst := GroupIPv4
		if src.Is6() {
			dst = GroupIPv6
		}
		a := &Advert{Version: 3, Type: 1, VRID: vrid, Priority: 250, MaxAdvertInterval: 10, Addresses: []netip.Addr{netip.MustParseAddr(vip)}}
		msg, err := a.Marshal(src, dst, form)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", nsUs, os.Args[0], "-test.run", "^TestHelperSendAdverts$", "-test.count=1")
		cmd.Env = append(os.Environ(), "VRRP_HELPER_ADVERT="+hex.EncodeToString(msg), "VRRP_HELPER_SRC="+src.String(), "VRRP_HELPER_IF=us0")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	for _, tc := range []struct {
		name string
		src  netip.Addr
		vrid uint8
		vip  string
		form ChecksumForm
	}{
		{"ipv4 pseudo-header", netip.MustParseAddr("192.0.2.12"), 61, "192.0.2.100", ChecksumPseudoHeader},
		{"ipv6", netip.MustParseAddr("fe80::12"), 62, "2001:db8::100", ChecksumIPv6},
	} {
		if !waitVIP(tc.vip, true, 10*time.Second) {
			t.Fatalf("%s: keepalived never became Active (no %s)", tc.name, tc.vip)
		}
		cmd := sendOurs(tc.src, tc.vrid, tc.vip, tc.form)
		yielded := waitVIP(tc.vip, false, 1500*time.Millisecond)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%s: sender: %v", tc.name, err)
		}
		if !yielded {
			t.Errorf("%s: keepalived kept %s while our priority-250 adverts flowed", tc.name, tc.vip)
		}
	}
	// The RFC 9568 message-only form: record keepalived's verdict.
	if waitVIP("192.0.2.100", true, 10*time.Second) {
		cmd := sendOurs(netip.MustParseAddr("192.0.2.12"), 61, "192.0.2.100", ChecksumRFC9568)
		yielded := waitVIP("192.0.2.100", false, 1500*time.Millisecond)
		cmd.Wait()
		t.Logf("keepalived with the message-only IPv4 checksum form: yielded=%v", yielded)
	}
}
