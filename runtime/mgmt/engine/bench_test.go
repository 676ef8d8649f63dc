package engine

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/mgmt/wire"
)

// BenchmarkDirectorInterval is one discovery interval of a director that
// tracks 1,000 scanning nodes: 1,000 authenticated answers plus one
// discovery tick. ns/op is CPU time per interval, so at a 1 s interval
// ns/op / 1e7 is the percentage of one core.
//
//	go test -run XXX -bench DirectorInterval -benchmem ./runtime/mgmt/engine
func BenchmarkDirectorInterval(b *testing.B) {
	const nodes = 1000
	members := []Member{{Name: "dir-a", Address: netip.MustParseAddr("198.51.100.1"), Director: true}}
	for i := range nodes {
		members = append(members, Member{
			Name:    fmt.Sprintf("scan-%04d", i),
			Address: netip.AddrFrom4([4]byte{198, 51, 100 + byte((i+2)/256), byte((i + 2) % 256)}),
		})
	}
	cfg := Config{
		Cluster: "edge", Node: "dir-a", Address: members[0].Address, Broadcast: netip.MustParseAddr("198.51.103.255"),
		Interval: time.Second, DeadAfter: 3, Keys: [][]byte{testKey}, Members: members,
	}
	dir, err := New(cfg, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := t0
	dir.Step(now, SetActive{Active: true})
	answers := make([][]byte, nodes)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		now = t0.Add(time.Duration(i+1) * time.Second)
		for j := range answers {
			m := members[j+1]
			answers[j] = answerFrom(m.Name, 7, uint64(i+1), now, func(msg *wire.Message, _ *[]byte) {
				msg.Answer.Load = uint16(j)
				msg.Answer.Addresses = []netip.Prefix{netip.PrefixFrom(m.Address, 22)}
			})
		}
		b.StartTimer()
		for j, a := range answers {
			dir.Step(now, Packet{Src: members[j+1].Address, Data: a})
		}
		if d := dir.Deadline(); !d.After(now) {
			dir.Step(now, Tick{})
		}
	}
	b.StopTimer()
	if up := countUp(dir); up != nodes+1 {
		b.Fatalf("%d nodes up, want %d", up, nodes+1)
	}
	if len(dir.Stats().Drops) != 0 {
		b.Fatalf("drops: %v", dir.Stats().Drops)
	}
}

func countUp(e *Engine) int {
	n := 0
	for _, r := range e.Table() {
		if r.Status == StatusUp {
			n++
		}
	}
	return n
}
