package engine

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mwgc/mwgc/runtime/mgmt/wire"
)

type msgOpt func(m *wire.Message, key *[]byte)

func answerFrom(node string, boot, seq uint64, at time.Time, opts ...msgOpt) []byte {
	m := &wire.Message{
		Header: wire.Header{Type: wire.TypeAnswer, BootID: boot, Seq: seq, Time: at.UnixMilli()},
		Answer: &wire.Answer{Cluster: "edge", Node: node, Health: wire.HealthAvailable},
	}
	return seal(m, opts)
}

func discoveryFrom(node string, boot, seq uint64, at time.Time, opts ...msgOpt) []byte {
	m := &wire.Message{
		Header:    wire.Header{Type: wire.TypeDiscovery, BootID: boot, Seq: seq, Time: at.UnixMilli()},
		Discovery: &wire.Discovery{Cluster: "edge", Node: node, IntervalMillis: 1000},
	}
	return seal(m, opts)
}

func seal(m *wire.Message, opts []msgOpt) []byte {
	key := testKey
	for _, o := range opts {
		o(m, &key)
	}
	b, err := wire.Seal(m, key)
	if err != nil {
		panic(err)
	}
	return b
}

func withKey(k []byte) msgOpt { return func(_ *wire.Message, key *[]byte) { *key = k } }
func withCluster(c string) msgOpt {
	return func(m *wire.Message, _ *[]byte) {
		if m.Answer != nil {
			m.Answer.Cluster = c
		} else {
			m.Discovery.Cluster = c
		}
	}
}
func withInterval(ms uint32) msgOpt {
	return func(m *wire.Message, _ *[]byte) { m.Discovery.IntervalMillis = ms }
}

// Every kind of bad datagram is dropped with its own reason, counted, and
// leaves the table alone. Steps run in order against one Active director.
func TestDrops(t *testing.T) {
	scan1, scan2 := addrOf("scan-1"), addrOf("scan-2")
	stranger := netip.MustParseAddr("192.0.2.99")
	first := answerFrom("scan-1", 7, 10, t0)
	steps := []struct {
		name string
		src  netip.Addr
		data []byte
		want DropReason // "" = accepted
	}{
		{"valid answer", scan1, first, ""},
		{"replayed answer", scan1, first, DropReplay},
		{"unknown source", stranger, answerFrom("scan-1", 7, 11, t0), DropUnknownSource},
		{"wrong key", scan1, answerFrom("scan-1", 7, 11, t0, withKey(bytes.Repeat([]byte{1}, 32))), DropAuth},
		{"no MAC", scan1, answerFrom("scan-1", 7, 11, t0, withKey(nil)), DropAuthMissing},
		{"other cluster", scan1, answerFrom("scan-1", 7, 11, t0, withCluster("core")), DropCluster},
		{"name of another member", scan1, answerFrom("scan-2", 7, 11, t0), DropName},
		{"own address", addrOf("dir-a"), answerFrom("dir-a", 7, 11, t0), DropOwn},
		{"discovery from a scanner", scan2, discoveryFrom("scan-2", 3, 1, t0), DropNotDirector},
		{"discovery with interval 0", addrOf("dir-b"), discoveryFrom("dir-b", 3, 1, t0, withInterval(0)), DropInterval},
		{"timestamp too old", scan1, answerFrom("scan-1", 7, 11, t0.Add(-MaxClockSkew-time.Second)), DropStale},
		{"timestamp in the future", scan1, answerFrom("scan-1", 7, 11, t0.Add(MaxClockSkew+time.Second)), DropStale},
		// (now - t) * 1e6 wraps to 0.45 ms in int64 nanoseconds.
		{"timestamp that overflows a naive difference", scan1, answerFrom("scan-1", 7, 11, time.UnixMilli(t0.UnixMilli()-18446744073710)), DropStale},
		{"garbage", scan1, []byte("GET / HTTP/1.0\r\n\r\n" + string(make([]byte, 32))), "magic"},
		{"truncated", scan1, first[:20], "short"},
		{"reordered within the window", scan1, answerFrom("scan-1", 7, 9, t0), ""},
		{"jump ahead", scan1, answerFrom("scan-1", 7, 100, t0), ""},
		{"below the window", scan1, answerFrom("scan-1", 7, 100-ReplayWindow, t0), DropReplay},
		{"at the window's edge", scan1, answerFrom("scan-1", 7, 100-ReplayWindow+1, t0), ""},
		{"old boot replayed", scan1, answerFrom("scan-1", 6, 500, t0.Add(-time.Second)), DropReplay},
		{"new boot, newer time", scan1, answerFrom("scan-1", 8, 1, t0.Add(time.Millisecond)), ""},
		{"previous boot again", scan1, answerFrom("scan-1", 7, 101, t0), DropReplay},
	}
	e := newEngine(t, "dir-a", 1)
	e.Step(t0, SetActive{Active: true})
	wantCounts := map[DropReason]uint64{}
	accepted := uint64(0)
	for _, st := range steps {
		acts := e.Step(t0, Packet{Src: st.src, Data: st.data})
		var got DropReason
		for _, a := range acts {
			if d, ok := a.(Dropped); ok {
				got = d.Reason
				if d.Src != st.src {
					t.Errorf("%s: Dropped.Src %v, want %v", st.name, d.Src, st.src)
				}
			}
		}
		if got != st.want {
			t.Errorf("%s: dropped as %q, want %q (actions %+v)", st.name, got, st.want, acts)
		}
		if st.want != "" {
			wantCounts[st.want]++
		} else {
			accepted++
		}
	}
	stats := e.Stats()
	if diff := cmp.Diff(wantCounts, stats.Drops); diff != "" {
		t.Errorf("drop counters (-want +got):\n%s", diff)
	}
	if stats.AnswersReceived != accepted {
		t.Errorf("AnswersReceived %d, want %d", stats.AnswersReceived, accepted)
	}
	if r := tableRow(e, "scan-1"); r.Status != StatusUp || r.Restarts != 1 {
		t.Errorf("scan-1 row %+v, want up with one restart", r)
	}
	if r := tableRow(e, "scan-2"); r.Status != StatusUnseen {
		t.Errorf("scan-2 row %+v: drops must not touch the table", r)
	}
}

func TestNotActiveAndUnauthenticated(t *testing.T) {
	e := newEngine(t, "dir-b", 1) // a Backup
	acts := e.Step(t0, Packet{Src: addrOf("scan-1"), Data: answerFrom("scan-1", 7, 1, t0)})
	if len(acts) != 1 || acts[0].(Dropped).Reason != DropNotActive {
		t.Errorf("answer to a Backup: %+v, want one not-active drop", acts)
	}

	cfg := testConfig("scan-1")
	cfg.Keys = nil
	u, err := New(cfg, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	acts = u.Step(t0, Packet{Src: addrOf("dir-a"), Data: discoveryFrom("dir-a", 5, 1, t0)})
	if len(acts) != 1 || acts[0].(Dropped).Reason != DropAuthUnexpected {
		t.Errorf("signed discovery to an unauthenticated node: %+v", acts)
	}
	acts = u.Step(t0, Packet{Src: addrOf("dir-a"), Data: discoveryFrom("dir-a", 5, 2, t0, withKey(nil))})
	if len(acts) != 2 {
		t.Fatalf("unsigned discovery to an unauthenticated node: %+v, want DirectorHeard and an answer", acts)
	}
	send := acts[1].(Send)
	m, err := wire.Parse(send.Data)
	if err != nil || m.Auth != wire.AuthNone || send.To != addrOf("dir-a") {
		t.Errorf("answer %+v to %v (%v): want unauthenticated, to dir-a", m, send.To, err)
	}
}

func tableRow(e *Engine, name string) Node {
	for _, r := range e.Table() {
		if r.Name == name {
			return r
		}
	}
	return Node{}
}
