package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"

	"github.com/mwgc/mwgc/runtime/netlab"
)

// HolderSample is one answer to "who has the VIP?": the MAC that answered
// the ARP request, "" when nobody did within the sampling period.
type HolderSample struct {
	At  time.Time
	MAC string
}

// HolderSampler asks for an IPv4 VIP by ARP every 10 ms from a client
// namespace, as the clients of the cluster learn it: an observer outside
// the agents.
type HolderSampler struct {
	mu      sync.Mutex
	samples []HolderSample
	stop    chan struct{}
	done    chan struct{}
}

// SampleHolder starts sampling from node (which needs an IPv4 address on
// eth0 in the VIP's prefix).
func SampleHolder(t testing.TB, lab *netlab.Lab, node string, vip netip.Addr) *HolderSampler {
	t.Helper()
	var c *arp.Client
	if err := lab.Do(node, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	}); err != nil {
		t.Fatalf("ARP client in %s: %v", node, err)
	}
	h := &HolderSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		defer c.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
			at := time.Now()
			c.SetDeadline(at.Add(8 * time.Millisecond))
			mac, err := c.Resolve(vip)
			s := HolderSample{At: at}
			if err == nil {
				s.MAC = mac.String()
			}
			h.mu.Lock()
			h.samples = append(h.samples, s)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() { h.Stop() })
	return h
}

// Stop ends the sampling and returns every sample.
func (h *HolderSampler) Stop() []HolderSample {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.samples
}

// Since returns the samples taken at or after from.
func (h *HolderSampler) Since(from time.Time) []HolderSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []HolderSample
	for _, s := range h.samples {
		if !s.At.Before(from) {
			out = append(out, s)
		}
	}
	return out
}

// HeldOnlyBy checks that every sample was answered by mac, allowing at
// most maxMissed unanswered samples in a row (an ARP reply lost on a busy
// machine is not a move); it describes the first violation.
func HeldOnlyBy(samples []HolderSample, mac string, maxMissed int) error {
	if len(samples) == 0 {
		return fmt.Errorf("no samples")
	}
	missed := 0
	for _, s := range samples {
		switch s.MAC {
		case mac:
			missed = 0
		case "":
			if missed++; missed > maxMissed {
				return fmt.Errorf("nobody answered for the VIP %d samples in a row, from %s", missed, s.At.Format("15:04:05.000"))
			}
		default:
			return fmt.Errorf("%s answered for the VIP at %s (holder %s)", s.MAC, s.At.Format("15:04:05.000"), mac)
		}
	}
	return nil
}
