package e2e

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// NeighbourSampler reads, every 10 ms, the MAC a client namespace's
// neighbour table holds for an address: where the client's next packet to
// the VIP goes. It sees what an ARP or neighbour-advertisement spoofer
// changes, which asking "who has the VIP?" does not (the spoofer need not
// answer). An observer outside the agents. MAC "" when there is no usable
// entry.
type NeighbourSampler struct{ *sampler }

// SampleNeighbour starts sampling node's neighbour entry for addr on eth0.
func SampleNeighbour(t testing.TB, lab *netlab.Lab, node string, addr netip.Addr) *NeighbourSampler {
	t.Helper()
	var h *netlink.Handle
	var link netlink.Link
	if err := lab.Do(node, func() (err error) {
		if h, err = netlink.NewHandle(); err != nil {
			return err
		}
		link, err = h.LinkByName("eth0")
		return err
	}); err != nil {
		t.Fatalf("netlink in %s: %v", node, err)
	}
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	return &NeighbourSampler{startSampler(t, func(at time.Time) HolderSample {
		sample := HolderSample{At: at}
		if list, err := h.NeighList(link.Attrs().Index, family); err == nil {
			for _, n := range list {
				ip, _ := netip.AddrFromSlice(n.IP)
				if ip.Unmap() == addr && n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) == 0 && len(n.HardwareAddr) == 6 {
					sample.MAC = net.HardwareAddr(n.HardwareAddr).String()
				}
			}
		}
		return sample
	}, h.Close)}
}

// Stretches sums up the samples showing mac: how many, and the longest
// run of consecutive ones as a duration (first to last sample of the run
// plus one period).
func Stretches(samples []HolderSample, mac string) (n int, longest time.Duration) {
	var runStart time.Time
	for i, x := range samples {
		if x.MAC != mac {
			runStart = time.Time{}
			continue
		}
		n++
		if runStart.IsZero() {
			runStart = x.At
		}
		end := x.At.Add(10 * time.Millisecond)
		if i+1 < len(samples) {
			end = samples[i+1].At
		}
		longest = max(longest, end.Sub(runStart))
	}
	return n, longest
}
