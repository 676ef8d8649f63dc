package distrib

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func names(n int) []Backend {
	var bs []Backend
	for i := range n {
		bs = append(bs, Backend{Name: fmt.Sprintf("scan-%d", i+1), Weight: 1})
	}
	return bs
}

func without(bs []Backend, name string) []Backend {
	return slices.DeleteFunc(slices.Clone(bs), func(b Backend) bool { return b.Name == name })
}

func TestBuildIgnoresOrder(t *testing.T) {
	bs := names(7)
	a := Build(bs, 1024)
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	b := Build(rev, 1024)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("order of backends changed the table:\n%s", diff)
	}
	if a.Digest() != b.Digest() {
		t.Fatal("digests differ")
	}
}

func TestBuildEmptyAndZeroWeight(t *testing.T) {
	tb := Build(nil, 64)
	for s := range tb.Owner {
		if tb.Owner[s] != -1 || tb.Name(s) != "" {
			t.Fatalf("slot %d owned (%d) with no backend", s, tb.Owner[s])
		}
	}
	tb = Build([]Backend{{Name: "a", Weight: 0}, {Name: "b", Weight: 1}}, 64)
	if c := tb.Counts(); c["b"] != 64 || len(c) != 1 {
		t.Fatalf("weight 0 must leave a node out: %v", c)
	}
}

// TestRemoveMovesOnlyItsSlots: the defining property, for every node of
// several cluster sizes.
func TestRemoveMovesOnlyItsSlots(t *testing.T) {
	for _, n := range []int{2, 3, 4, 5, 8, 16, 50} {
		bs := names(n)
		full := Build(bs, DefaultSlots)
		for _, gone := range bs {
			part := Build(without(bs, gone.Name), DefaultSlots)
			moved := 0
			for s := range full.Owner {
				if full.Name(s) == part.Name(s) {
					continue
				}
				moved++
				if full.Name(s) != gone.Name {
					t.Fatalf("n=%d: removing %s moved slot %d from %s to %s", n, gone.Name, s, full.Name(s), part.Name(s))
				}
			}
			if want := full.Counts()[gone.Name]; moved != want {
				t.Fatalf("n=%d: removing %s moved %d slots, it owned %d", n, gone.Name, moved, want)
			}
		}
	}
}

// TestAddMovesAboutOneNth: a node coming back takes only slots, each to
// itself, about 1/N of the table.
func TestAddMovesAboutOneNth(t *testing.T) {
	for _, n := range []int{2, 4, 8, 16} {
		bs := names(n)
		newcomer := bs[n-1]
		before := Build(bs[:n-1], DefaultSlots)
		after := Build(bs, DefaultSlots)
		moved := 0
		for s := range before.Owner {
			if before.Name(s) != after.Name(s) {
				moved++
				if after.Name(s) != newcomer.Name {
					t.Fatalf("n=%d: adding %s moved slot %d to %s", n, newcomer.Name, s, after.Name(s))
				}
			}
		}
		frac, ideal := float64(moved)/DefaultSlots, 1/float64(n)
		// Binomial noise: 4 standard deviations of the slot count.
		tol := 4 * math.Sqrt(ideal*(1-ideal)/DefaultSlots)
		if math.Abs(frac-ideal) > tol {
			t.Errorf("n=%d: %.4f of slots moved, ideal %.4f ± %.4f", n, frac, ideal, tol)
		}
	}
}

// TestSlotBalance: the table itself is even to binomial noise.
func TestSlotBalance(t *testing.T) {
	for _, n := range []int{2, 4, 8, 16} {
		c := Build(names(n), DefaultSlots).Counts()
		lo, hi := DefaultSlots, 0
		for _, v := range c {
			lo, hi = min(lo, v), max(hi, v)
		}
		ideal := float64(DefaultSlots) / float64(n)
		tol := 4 * math.Sqrt(ideal)
		if float64(hi) > ideal+tol || float64(lo) < ideal-tol {
			t.Errorf("n=%d: slots per node %d..%d, ideal %.0f ± %.0f", n, lo, hi, ideal, tol)
		}
	}
}

func TestWeights(t *testing.T) {
	bs := []Backend{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}
	tb := Build(bs, 16384)
	c := tb.Counts()
	for _, b := range bs {
		want := float64(b.Weight) / 10
		got := float64(c[b.Name]) / 16384
		if math.Abs(got-want) > 4*math.Sqrt(want*(1-want)/16384) {
			t.Errorf("%s weight %d: share %.4f, want %.4f", b.Name, b.Weight, got, want)
		}
	}
	// Raising one weight moves slots only to that node.
	bs2 := slices.Clone(bs)
	bs2[0].Weight = 3
	tb2 := Build(bs2, 16384)
	for s := range tb.Owner {
		if tb.Name(s) != tb2.Name(s) && tb2.Name(s) != "a" {
			t.Fatalf("raising a's weight moved slot %d from %s to %s", s, tb.Name(s), tb2.Name(s))
		}
	}
}

func TestDigest(t *testing.T) {
	a := Build(names(4), 256)
	if a.Digest() != Build(names(4), 256).Digest() {
		t.Fatal("same input, different digest")
	}
	if a.Digest() == Build(names(3), 256).Digest() {
		t.Fatal("different tables, same digest")
	}
	if a.Digest() == Build(names(4), 512).Digest() {
		t.Fatal("different sizes, same digest")
	}
}

// TestClientsMoved measures what a client feels: with 10,000 clients, the
// fraction that changes node when one of N nodes leaves or comes back,
// against the ideal 1/N.
func TestClientsMoved(t *testing.T) {
	seed := Seed("web-proxy")
	clients := make([]netip.Addr, 10000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range clients {
		clients[i] = netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	}
	for _, n := range []int{3, 4, 5, 8} {
		bs := names(n)
		full := Build(bs, DefaultSlots)
		part := Build(bs[1:], DefaultSlots)
		moved, ownersMoved := 0, 0
		for _, c := range clients {
			a, b := ClientNode(full, c, seed), ClientNode(part, c, seed)
			if a != b {
				moved++
				if a != bs[0].Name {
					ownersMoved++
				}
			}
		}
		if ownersMoved != 0 {
			t.Fatalf("n=%d: %d clients of other nodes moved", n, ownersMoved)
		}
		frac, ideal := float64(moved)/float64(len(clients)), 1/float64(n)
		t.Logf("n=%d: a node leaving (or coming back) moves %.3f of clients, ideal %.3f", n, frac, ideal)
		if math.Abs(frac-ideal) > 0.25*ideal {
			t.Errorf("n=%d: %.3f of clients moved, ideal %.3f", n, frac, ideal)
		}
	}
}

func TestSlotRangeAndSpread(t *testing.T) {
	const slots = 4096
	hits := make([]int, 16)
	for i := range 1 << 16 {
		a := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		s := Slot(a, 12345, slots)
		if s < 0 || s >= slots {
			t.Fatalf("slot %d out of range", s)
		}
		hits[s*16/slots]++
	}
	for i, h := range hits {
		if h < 3800 || h > 4400 {
			t.Errorf("sixteenth %d of the table got %d of 65536 addresses", i, h)
		}
	}
	if Slot(netip.MustParseAddr("::ffff:198.51.100.7"), 1, slots) != Slot(netip.MustParseAddr("198.51.100.7"), 1, slots) {
		t.Error("a mapped IPv4 address must hash like the IPv4 address")
	}
	if Seed("a") == Seed("b") {
		t.Error("two clusters, one seed")
	}
}

func TestJhashKnown(t *testing.T) {
	// lookup3's hashlittle: the empty key gives the initial value; the
	// kernel's jhash adds the length to it the same way. The kernel itself
	// is checked in runtime/forward's namespace test.
	if got := jhash(nil, 0); got != 0xdeadbeef {
		t.Errorf("jhash(empty, 0) = %#x, want 0xdeadbeef", got)
	}
	// Published lookup3 vectors (hashlittle of "Four score and seven years ago").
	key := []byte("Four score and seven years ago")
	for _, v := range []struct{ init, want uint32 }{{0, 0x17770551}, {1, 0xcd628161}} {
		if got := jhash(key, v.init); got != v.want {
			t.Errorf("jhash(%q, %d) = %#x, want %#x", key, v.init, got, v.want)
		}
	}
}
