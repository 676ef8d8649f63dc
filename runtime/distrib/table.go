// Package distrib decides, purely, which scanning node serves which client:
// stateless consistent hashing of the client address into a fixed-size slot
// table that the forwarding driver loads into an nftables map.
//
// The kernel computes slot = jhash(client address, seed) scaled to the
// table size (nft's `jhash ip saddr mod N seed S`, reproduced in Go by
// Slot); the table maps each slot to a node. The table is rendezvous
// hashing (highest random weight) done once per slot: every slot ranks
// every node by a hash of (node name, slot) and goes to the best-ranked
// available node. That gives, by construction and not only on average:
//
//   - one node per client: a client's address always hashes to one slot;
//   - a node going down moves exactly its own slots, nothing else (each
//     other slot's best-ranked node is still there);
//   - a node coming back takes exactly the slots it ranks first on, about
//     1/N of them, each from the node that held it;
//   - the same set of nodes gives the same table on every director, from
//     names alone, whatever order answers arrived in.
//
// Maglev was the alternative: its table is balanced to one slot, but its
// fill is sequential, so removing a node also moves a few slots between
// other nodes, and weights need repeated fills. Rendezvous moves nothing
// it does not have to and weights with the standard -w/ln(u) score; its
// slot balance is binomial (±0.7 % of the table per node at 4,096 slots
// and 4 nodes), far below the spread of a hundred real clients.
package distrib

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Limits of a table.
const (
	// DefaultSlots is the table size the compiler uses: big enough that
	// slot rounding is negligible (1/4096 of traffic per slot), small
	// enough that a full rewrite is one short netlink transaction.
	DefaultSlots = 4096
	MinSlots     = 64
	MaxSlots     = 65536
	// MaxWeight bounds a node's weight; weights are small integers
	// (load levels), not percentages.
	MaxWeight = 16
)

// Backend is a node that may receive traffic, with its weight (1 unless
// load weighting is on).
type Backend struct {
	Name   string
	Weight int
}

// Table maps slots to backends. Owner[s] indexes Backends, or is -1 when
// no backend is available (every slot then is -1).
type Table struct {
	Backends []Backend // sorted by name
	Owner    []int
}

// Build computes the rendezvous table of size slots for backends. Names
// must be unique; order does not matter. Backends with weight < 1 are left
// out. With no backend every slot is -1.
func Build(backends []Backend, slots int) Table {
	bs := make([]Backend, 0, len(backends))
	for _, b := range backends {
		if b.Weight >= 1 {
			bs = append(bs, Backend{Name: b.Name, Weight: min(b.Weight, MaxWeight)})
		}
	}
	slices.SortFunc(bs, func(a, b Backend) int { return strings.Compare(a.Name, b.Name) })
	t := Table{Backends: bs, Owner: make([]int, slots)}
	keys := make([]uint64, len(bs))
	weighted := false
	for i, b := range bs {
		keys[i] = nameKey(b.Name)
		weighted = weighted || b.Weight != 1
	}
	for s := range t.Owner {
		t.Owner[s] = best(keys, bs, uint64(s), weighted)
	}
	return t
}

// best returns the index of the backend that ranks slot s highest.
func best(keys []uint64, bs []Backend, s uint64, weighted bool) int {
	win := -1
	var winScore uint64
	var winW float64
	for i, k := range keys {
		h := mix(k ^ (s+1)*0x9e3779b97f4a7c15)
		if !weighted {
			if win < 0 || h > winScore {
				win, winScore = i, h
			}
			continue
		}
		// Weighted rendezvous: score = -w / ln(u), u uniform in (0,1).
		// A node's share is w/Σw, and changing one weight moves only
		// slots to or from that node.
		u := (float64(h>>11) + 0.5) / (1 << 53)
		sc := -float64(bs[i].Weight) / math.Log(u)
		if win < 0 || sc > winW {
			win, winW = i, sc
		}
	}
	return win
}

// nameKey is a node's 64-bit hash key, from its name only.
func nameKey(name string) uint64 {
	sum := sha256.Sum256([]byte("mwgc/distrib/v1\x00" + name))
	return binary.BigEndian.Uint64(sum[:8])
}

// mix is the SplitMix64 finaliser: a fast bijection with good avalanche.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Name returns the name of the backend owning slot s ("" when none).
func (t Table) Name(s int) string {
	if o := t.Owner[s]; o >= 0 {
		return t.Backends[o].Name
	}
	return ""
}

// Counts returns how many slots each backend owns (every backend listed).
func (t Table) Counts() map[string]int {
	c := make(map[string]int, len(t.Backends))
	for _, b := range t.Backends {
		c[b.Name] = 0
	}
	for s := range t.Owner {
		if n := t.Name(s); n != "" {
			c[n]++
		}
	}
	return c
}

// Digest identifies the mapping: the same slots going to the same names
// give the same digest on every director ("sha256:" + hex).
func (t Table) Digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "slots %d\n", len(t.Owner))
	for s := range t.Owner {
		h.Write([]byte(t.Name(s)))
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Moved counts the slots whose owner differs between a and b (tables of
// the same size).
func Moved(a, b Table) int {
	n := 0
	for s := range a.Owner {
		if a.Name(s) != b.Name(s) {
			n++
		}
	}
	return n
}
