package engine

import (
	"testing"
	"time"
)

// FuzzReceive: any datagram from a member, to an Active director or to an
// answering node, is either accepted or dropped with a reason, never a
// panic; a drop never changes the table.
func FuzzReceive(f *testing.F) {
	f.Add(answerFrom("scan-1", 7, 1, t0))
	f.Add(discoveryFrom("dir-b", 3, 1, t0))
	f.Add(answerFrom("scan-1", 7, 1, t0, withKey(nil)))
	f.Add(discoveryFrom("dir-b", 3, 1, t0, withKey(nil)))
	f.Add([]byte{0x6d, 0x67, 1, 2})
	// Unauthenticated engines too, so that the fuzzer gets past the MAC.
	unauth := func(name string, boot uint64) *Engine {
		cfg := testConfig(name)
		cfg.Keys = nil
		e, err := New(cfg, boot, nil)
		if err != nil {
			f.Fatal(err)
		}
		return e
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := newEngine(t, "dir-a", 1)
		dir.Step(t0, SetActive{Active: true})
		udir := unauth("dir-a", 1)
		udir.Step(t0, SetActive{Active: true})
		for _, tc := range []struct {
			e   *Engine
			src string
		}{{dir, "scan-1"}, {newEngine(t, "scan-1", 2), "dir-b"}, {udir, "scan-1"}, {unauth("scan-1", 2), "dir-b"}} {
			before := tc.e.Table()
			acts := tc.e.Step(t0.Add(time.Millisecond), Packet{Src: addrOf(tc.src), Data: data})
			for _, a := range acts {
				if d, ok := a.(Dropped); ok {
					if d.Reason == "" {
						t.Fatalf("drop without a reason: %+v", d)
					}
					if len(acts) != 1 {
						t.Fatalf("a drop came with other actions: %+v", acts)
					}
					after := tc.e.Table()
					for i := range before {
						if before[i].Status != after[i].Status || !before[i].LastSeen.Equal(after[i].LastSeen) {
							t.Fatalf("a dropped datagram changed the table: %+v -> %+v", before[i], after[i])
						}
					}
				}
			}
		}
	})
}
