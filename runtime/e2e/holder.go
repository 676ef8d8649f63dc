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

// sampler takes a HolderSample every 10 ms until Stop: the observers of
// the tests, outside the agents.
type sampler struct {
	mu      sync.Mutex
	samples []HolderSample
	stop    chan struct{}
	done    chan struct{}
}

// startSampler calls take every 10 ms in a goroutine of its own, then
// release once it stopped (Stop, or the test's cleanup).
func startSampler(t testing.TB, take func(at time.Time) HolderSample, release func()) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer release()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			x := take(time.Now())
			s.mu.Lock()
			s.samples = append(s.samples, x)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { s.Stop() })
	return s
}

// Stop ends the sampling and returns every sample.
func (s *sampler) Stop() []HolderSample {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// Between returns the samples taken in [from, to).
func (s *sampler) Between(from, to time.Time) []HolderSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []HolderSample
	for _, x := range s.samples {
		if !x.At.Before(from) && x.At.Before(to) {
			out = append(out, x)
		}
	}
	return out
}

// HolderSampler asks for an IPv4 VIP by ARP every 10 ms from a client
// namespace, as the clients of the cluster learn it: an observer outside
// the agents.
type HolderSampler struct{ *sampler }

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
	return &HolderSampler{startSampler(t, func(at time.Time) HolderSample {
		c.SetDeadline(at.Add(8 * time.Millisecond))
		s := HolderSample{At: at}
		if mac, err := c.Resolve(vip); err == nil {
			s.MAC = mac.String()
		}
		return s
	}, func() { c.Close() })}
}

// Since returns the samples taken at or after from.
func (h *HolderSampler) Since(from time.Time) []HolderSample {
	return h.Between(from, time.Now().Add(time.Hour))
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
