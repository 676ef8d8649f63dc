package vrrpnet

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/netlab"
	"github.com/mwgc/mwgc/runtime/vrrp"
)

// checksum4 fills in the VRRPv3 checksum the way keepalived sends it for
// IPv4 by default: over an IPv4 pseudo-header and the message.
func checksum4(msg []byte, src, dst netip.Addr) []byte {
	msg[6], msg[7] = 0, 0
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	add([]byte{0, vrrp.ProtocolNumber, byte(len(msg) >> 8), byte(len(msg))})
	add(msg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(msg[6:], ^uint16(sum))
	return msg
}

// keepalived accepts adverts sent through a Conn (TTL, source, group and,
// for IPv6, the kernel's checksum are what it checks): while a priority-200
// advertiser speaks it stays BACKUP; when it falls silent, keepalived takes over.
func TestKeepalivedAcceptsOurAdverts(t *testing.T) {
	netlab.Require(t, "keepalived")
	for _, tc := range []struct {
		name  string
		ipv6  bool
		addrG string
		addrK string
		vips  []string // keepalived's order = advert order
	}{
		{"IPv4", false, "192.0.2.1/24", "192.0.2.2/24", []string{"192.0.2.100/24"}},
		{"IPv6", true, "2001:db8::1/64", "2001:db8::2/64", []string{"fe80::7/64", "2001:db8::100/64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := netlab.New(t, "g", "k")
			lab.AddAddr("g", tc.addrG)
			lab.AddAddr("k", tc.addrK)
			var msg []byte
			for i, v := range tc.vips {
				a := netip.MustParsePrefix(v).Addr()
				if i == 0 {
					// We send every 100 ms but announce 300 ms: keepalived
					// learns the longer interval, so a sender delayed by a
					// loaded machine still does not trigger a takeover.
					msg = advert(7, 200, 30, a)
				} else {
					msg = append(msg, a.AsSlice()...)
				}
			}
			msg[3] = byte(len(tc.vips))
			src := netip.MustParsePrefix(tc.addrG).Addr()
			if tc.ipv6 {
				src = netip.MustParseAddr(lab.LinkLocal("g"))
			}
			g := listenIn(t, lab, "g", tc.ipv6, src)
			if !tc.ipv6 {
				msg = checksum4(msg, src, vrrp.GroupIPv4)
			}

			stop := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					if err := g.WritePacket(msg); err != nil {
						done <- err
						return
					}
					select {
					case <-stop:
						done <- nil
						return
					case <-tick.C:
					}
				}
			}()
			k := lab.StartKeepalived("k", netlab.KeepalivedConfig{Instances: []netlab.KeepalivedInstance{
				{VRID: 7, Priority: 100, AdvertInterval: 100 * time.Millisecond, VIPs: tc.vips},
			}})
			// keepalived's own Active_Down_Interval is about 0.36 s: 1.2 s
			// without a takeover means it accepts our adverts.
			if k.WaitState("VI_7", "MASTER", 1, 1200*time.Millisecond) {
				close(stop)
				t.Fatalf("keepalived took over while we advertised priority 200:\n%s", k.Log())
			}
			close(stop)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !k.WaitState("VI_7", "MASTER", 1, 5*time.Second) {
				t.Fatalf("keepalived did not take over after we fell silent:\n%s", k.Log())
			}
		})
	}
}
