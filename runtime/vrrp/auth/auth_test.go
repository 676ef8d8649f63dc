package auth

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The test vectors of ../shared/facts.md (reproduced there independently of
// keepalived): key 00 01 … 1f, key id 1, VRID 51, priority 200, interval
// 100 cs, sequence 0x6800000080000000.
var (
	vectorKey = func() []byte {
		k := make([]byte, 32)
		for i := range k {
			k[i] = byte(i)
		}
		return k
	}()
	vectorTime = time.Unix(0x68000000, 500_000_000) // sec 0x68000000, subsec 0x8000
	vectorV4   = mustHex("3133c80100644402c0000264" + "010100006800000080000000" + "1b84bc4e8e43892dc6d98448f8ee2265")
	vectorV6   = mustHex("3133c8010064a2e9fe800000000000000000000000000100" + "010100006800000080000000" + "c8c56146ebfd66ee10ec4d8186461b78")
	srcV4      = netip.MustParseAddr("198.51.100.10")
	srcV6      = netip.MustParseAddr("fe80::10")
	srcB       = netip.MustParseAddr("198.51.100.11")
	interval   = time.Second
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func newAuth(t testing.TB, cfg Config) *Authenticator {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func vectorConfig() Config {
	return Config{Keys: []Key{{ID: 1, Secret: vectorKey}}, ActiveKey: 1}
}

// TestVectors: signing the vectors' messages at the vectors' time gives the
// vectors byte for byte, and verifying them succeeds.
func TestVectors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  netip.Addr
		want []byte
	}{{"IPv4", srcV4, vectorV4}, {"IPv6", srcV6, vectorV6}} {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.want[:len(tc.want)-TrailerLen]
			got := newAuth(t, vectorConfig()).Sign(vectorTime, tc.src, interval, bytes.Clone(msg))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("signed advert (-vector +got):\n%s", diff)
			}
			tr, err := ParseTrailer(tc.want[len(msg):])
			if err != nil {
				t.Fatal(err)
			}
			if tr.Type != TypeHMACSHA256 || tr.KeyID != 1 || tr.Seq != 0x6800000080000000 {
				t.Fatalf("trailer decoded as %+v", tr)
			}
			if res, _ := newAuth(t, vectorConfig()).Verify(vectorTime, tc.src, interval, msg, tc.want[len(msg):]); res != OK {
				t.Fatalf("Verify(vector) = %v", res)
			}
		})
	}
}

// TestVerifyRefusals: every way the vector can be wrong gives its own result.
func TestVerifyRefusals(t *testing.T) {
	msg, tr := vectorV4[:12], vectorV4[12:]
	mod := func(b []byte, i int, v byte) []byte { b = bytes.Clone(b); b[i] = v; return b }
	window := DefaultWindow(interval) // 5s
	for _, tc := range []struct {
		name     string
		src      netip.Addr
		now      time.Time
		msg, tr  []byte
		want     Result
		wantSeen bool // the trailer decoded
	}{
		{"as sent", srcV4, vectorTime, msg, tr, OK, true},
		{"checksum field not covered", srcV4, vectorTime, mod(msg, 6, 0xff), tr, OK, true},
		{"other source", netip.MustParseAddr("198.51.100.11"), vectorTime, msg, tr, BadMAC, true},
		{"priority changed", srcV4, vectorTime, mod(msg, 2, 255), tr, BadMAC, true},
		{"VRID changed", srcV4, vectorTime, mod(msg, 1, 52), tr, BadMAC, true},
		{"MAC bit flipped", srcV4, vectorTime, msg, mod(tr, 27, tr[27]^1), BadMAC, true},
		{"counter changed", srcV4, vectorTime, msg, mod(tr, 11, 1), BadMAC, true},
		{"unknown key id", srcV4, vectorTime, msg, mod(tr, 1, 2), UnknownKey, true},
		{"scheme 2", srcV4, vectorTime, msg, mod(tr, 0, 2), Malformed, true},
		{"reserved set", srcV4, vectorTime, msg, mod(tr, 3, 1), Malformed, true},
		{"short trailer", srcV4, vectorTime, msg, tr[:27], Malformed, false},
		{"window edge, late", srcV4, vectorTime.Add(window), msg, tr, OK, true},
		{"beyond the window, late", srcV4, vectorTime.Add(window + time.Second), msg, tr, Stale, true},
		{"window edge, early", srcV4, vectorTime.Add(-window), msg, tr, OK, true},
		{"beyond the window, early", srcV4, vectorTime.Add(-window - time.Second), msg, tr, Stale, true},
		// Stale is decided before the key and the MAC: a flood of old or
		// far-future packets never costs an HMAC.
		{"stale with a bad MAC", srcV4, vectorTime.Add(time.Hour), msg, mod(tr, 27, 0), Stale, true},
		{"stale with an unknown key", srcV4, vectorTime.Add(time.Hour), msg, mod(tr, 1, 9), Stale, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, seen := newAuth(t, vectorConfig()).Verify(tc.now, tc.src, interval, tc.msg, tc.tr)
			if got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
			if (seen.Type != 0) != tc.wantSeen {
				t.Fatalf("trailer %+v returned", seen)
			}
		})
	}
}

// TestWindowSerial: the freshness check works on 32-bit seconds, so a
// timestamp just across the wrap of the field is still close.
func TestWindowSerial(t *testing.T) {
	for _, tc := range []struct {
		now    int64
		sec    uint32
		window time.Duration
		want   bool
	}{
		{100, 100, time.Second, true},
		{100, 99, time.Second, true},
		{100, 98, time.Second, false},
		{100, 102, time.Second, false},
		{1 << 32, 0xffffffff, time.Second, true}, // now wrapped to 0, sender at the top
		{1<<32 + 5, 0xffffffff, 5 * time.Second, false},
		{0xffffffff, 2, 5 * time.Second, true},
		{0x80000000, 0, 300 * time.Second, false},
	} {
		if got := fresh(time.Unix(tc.now, 0), tc.sec, tc.window); got != tc.want {
			t.Errorf("fresh(now %d, sec %d, window %v) = %v, want %v", tc.now, tc.sec, tc.window, got, tc.want)
		}
	}
}

func TestDefaultWindow(t *testing.T) {
	for _, tc := range []struct{ interval, want time.Duration }{
		{10 * time.Millisecond, 5 * time.Second},
		{time.Second, 5 * time.Second},
		{1990 * time.Millisecond, 5 * time.Second},
		{2 * time.Second, 6 * time.Second},
		{2500 * time.Millisecond, 7 * time.Second},
		{40950 * time.Millisecond, 122 * time.Second},
	} {
		if got := DefaultWindow(tc.interval); got != tc.want {
			t.Errorf("DefaultWindow(%v) = %v, want %v", tc.interval, got, tc.want)
		}
	}
}

// TestSeqAfter: RFC 1982 ordering over 64 bits.
func TestSeqAfter(t *testing.T) {
	for _, tc := range []struct {
		a, b Seq
		want bool
	}{
		{2, 1, true},
		{1, 2, false},
		{1, 1, false},
		{0, 0xffffffffffffffff, true}, // across the wrap
		{0xffffffffffffffff, 0, false},
		{1 << 63, 0, false}, // exactly half way: neither is after
		{1<<63 - 1, 0, true},
	} {
		if got := tc.a.After(tc.b); got != tc.want {
			t.Errorf("%#x.After(%#x) = %v, want %v", uint64(tc.a), uint64(tc.b), got, tc.want)
		}
	}
}

// TestReplay: the per-sender high-water mark refuses a repeat and an older
// advert, keeps senders apart, and expires when it left the window.
func TestReplay(t *testing.T) {
	sender := newAuth(t, vectorConfig())
	other := newAuth(t, vectorConfig())
	srcB := netip.MustParseAddr("198.51.100.11")
	msg := vectorV4[:12]
	at := vectorTime
	first := sender.Sign(at, srcV4, interval, bytes.Clone(msg))
	second := sender.Sign(at, srcV4, interval, bytes.Clone(msg)) // same clock: counter +1
	fromB := other.Sign(at, srcB, interval, bytes.Clone(msg))

	rx := newAuth(t, vectorConfig())
	steps := []struct {
		name string
		now  time.Time
		src  netip.Addr
		pkt  []byte
		want Result
	}{
		{"first", at, srcV4, first, OK},
		{"the same again", at, srcV4, first, Replay},
		{"the next", at, srcV4, second, OK},
		{"the older one after the next", at, srcV4, first, Replay},
		{"another sender, same sequence", at, srcB, fromB, OK},
		// Inside the window the mark holds however long ago it was set.
		{"replayed 5 s later", at.Add(5 * time.Second), srcV4, second, Replay},
		// Outside it the window refuses before the mark is looked at.
		{"replayed 6 s later", at.Add(6 * time.Second), srcV4, second, Stale},
	}
	for _, s := range steps {
		if got, _ := rx.Verify(s.now, s.src, interval, s.pkt[:12], s.pkt[12:]); got != s.want {
			t.Errorf("%s: %v, want %v", s.name, got, s.want)
		}
	}
	// A failed MAC never moves the mark: a forged far-ahead sequence with a
	// bad MAC must not lock the real sender out.
	forged := bytes.Clone(second)
	forged[11] = 0xff
	if got, _ := rx.Verify(at, srcV4, interval, forged[:12], forged[12:]); got != BadMAC {
		t.Fatalf("forged: %v", got)
	}
	third := sender.Sign(at, srcV4, interval, bytes.Clone(msg))
	if got, _ := rx.Verify(at, srcV4, interval, third[:12], third[12:]); got != OK {
		t.Fatalf("the real sender after a forgery: %v", got)
	}
}

// TestMarkExpires: a sender whose clock stepped back restarts its sequence
// from the clock once it ran a window ahead; the receiver's old mark is
// outside the window by then and no longer refuses it.
func TestMarkExpires(t *testing.T) {
	sender := newAuth(t, vectorConfig())
	rx := newAuth(t, vectorConfig())
	msg := vectorV4[:12]
	at := vectorTime
	p := sender.Sign(at, srcV4, interval, bytes.Clone(msg))
	if got, _ := rx.Verify(at, srcV4, interval, p[:12], p[12:]); got != OK {
		t.Fatal(got)
	}
	// The sender's clock jumps 10 s back (the receiver's stays): inside
	// the 5 s window the sender continues from its last sequence ...
	back := at.Add(-3 * time.Second)
	p = sender.Sign(back, srcV4, interval, bytes.Clone(msg))
	if tr, _ := ParseTrailer(p[12:]); int64(tr.Seq.Sec()) != at.Unix() {
		t.Fatalf("3 s back: sequence restarted at %d", tr.Seq.Sec())
	}
	back = at.Add(-10 * time.Second)
	p = sender.Sign(back, srcV4, interval, bytes.Clone(msg))
	tr, _ := ParseTrailer(p[12:])
	if int64(tr.Seq.Sec()) != back.Unix() {
		t.Fatalf("10 s back: sequence at %d, want the clock %d", tr.Seq.Sec(), back.Unix())
	}
	// ... which the receiver refuses as stale until its own clock agrees,
	// and then accepts although the sequence is below the old mark.
	if got, _ := rx.Verify(at, srcV4, interval, p[:12], p[12:]); got != Stale {
		t.Fatalf("stepped-back advert now: %v", got)
	}
	if got, _ := rx.Verify(back.Add(time.Second), srcV4, interval, p[:12], p[12:]); got != OK {
		t.Fatalf("stepped-back advert once the mark left the window: %v", got)
	}
}

// TestSendSequence: max(clock, last+1).
func TestSendSequence(t *testing.T) {
	a := newAuth(t, vectorConfig())
	at := vectorTime
	seqs := []Seq{a.nextSeq(at, 5*time.Second), a.nextSeq(at, 5*time.Second), a.nextSeq(at.Add(-time.Second), 5*time.Second), a.nextSeq(at.Add(time.Second), 5*time.Second)}
	want := []Seq{0x6800000080000000, 0x6800000080000001, 0x6800000080000002, 0x6800000180000000}
	if diff := cmp.Diff(want, seqs); diff != "" {
		t.Fatalf("sequences (-want +got):\n%s", diff)
	}
}

// TestModes: what each mode sends and accepts.
func TestModes(t *testing.T) {
	for _, tc := range []struct {
		mode                  Mode
		signs, acceptUnsigned bool
	}{
		{0, true, false}, // zero is enforce
		{ModeEnforce, true, false},
		{ModePermissive, true, true},
		{ModeReceiveOnly, false, true},
	} {
		cfg := vectorConfig()
		cfg.Mode = tc.mode
		a := newAuth(t, cfg)
		if a.Signs() != tc.signs || a.AcceptsUnsigned() != tc.acceptUnsigned {
			t.Errorf("%v: signs %v accepts unsigned %v", tc.mode, a.Signs(), a.AcceptsUnsigned())
		}
		out := a.Sign(vectorTime, srcV4, interval, bytes.Clone(vectorV4[:12]))
		if signed := len(out) == 12+TrailerLen; signed != tc.signs {
			t.Errorf("%v: Sign gave %d bytes", tc.mode, len(out))
		}
		// A trailer that is present is checked in every mode.
		if got, _ := a.Verify(vectorTime, srcV4, interval, vectorV4[:12], append(bytes.Clone(vectorV4[12:39]), 0)); got != BadMAC {
			t.Errorf("%v: a bad trailer gave %v", tc.mode, got)
		}
	}
	for _, s := range []string{"enforce", "permissive", "receive-only"} {
		m, err := ParseMode(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseMode("off"); err == nil {
		t.Error("ParseMode(off) accepted")
	}
}

// TestRotation walks the documented key rotation: add the new key
// everywhere, move the active key, remove the old one. At every step every
// advert is accepted by every node, and marks and sequences survive.
func TestRotation(t *testing.T) {
	k1, k2 := Key{ID: 1, Secret: vectorKey}, Key{ID: 2, Secret: bytes.Repeat([]byte{0xa5}, 40)}
	nodes := []*Authenticator{newAuth(t, Config{Keys: []Key{k1}, ActiveKey: 1}), newAuth(t, Config{Keys: []Key{k1}, ActiveKey: 1})}
	srcs := []netip.Addr{srcV4, netip.MustParseAddr("198.51.100.11")}
	now := vectorTime
	exchange := func(step string, wantKey uint8) {
		t.Helper()
		for i, from := range nodes {
			now = now.Add(100 * time.Millisecond)
			p := from.Sign(now, srcs[i], interval, bytes.Clone(vectorV4[:12]))
			if tr, _ := ParseTrailer(p[12:]); tr.KeyID != wantKey {
				t.Fatalf("%s: node %d signs with key %d, want %d", step, i, tr.KeyID, wantKey)
			}
			to := nodes[1-i]
			if got, _ := to.Verify(now, srcs[i], interval, p[:12], p[12:]); got != OK {
				t.Fatalf("%s: node %d refused node %d's advert: %v", step, 1-i, i, got)
			}
			// The same advert again is still a replay after any reconfigure.
			if got, _ := to.Verify(now, srcs[i], interval, p[:12], p[12:]); got != Replay {
				t.Fatalf("%s: replay gave %v", step, got)
			}
		}
	}
	reconfigure := func(cfg Config, node int) {
		t.Helper()
		if err := nodes[node].Reconfigure(cfg); err != nil {
			t.Fatal(err)
		}
	}
	exchange("before", 1)
	reconfigure(Config{Keys: []Key{k1, k2}, ActiveKey: 1}, 0)
	exchange("key 2 added on node 0", 1)
	reconfigure(Config{Keys: []Key{k1, k2}, ActiveKey: 1}, 1)
	exchange("key 2 added everywhere", 1)
	reconfigure(Config{Keys: []Key{k1, k2}, ActiveKey: 2}, 0)
	reconfigure(Config{Keys: []Key{k1, k2}, ActiveKey: 2}, 1)
	exchange("key 2 active", 2)
	reconfigure(Config{Keys: []Key{k2}, ActiveKey: 2}, 0)
	reconfigure(Config{Keys: []Key{k2}, ActiveKey: 2}, 1)
	exchange("key 1 removed", 2)
	// Key 1 no longer verifies anywhere.
	old := newAuth(t, Config{Keys: []Key{k1}, ActiveKey: 1})
	p := old.Sign(now.Add(time.Second), srcs[0], interval, bytes.Clone(vectorV4[:12]))
	if got, _ := nodes[1].Verify(now.Add(time.Second), srcs[0], interval, p[:12], p[12:]); got != UnknownKey {
		t.Fatalf("advert signed with the removed key: %v", got)
	}
	if ids := nodes[0].KeyIDs(); len(ids) != 1 || ids[0] != 2 || nodes[0].ActiveKey() != 2 {
		t.Fatalf("keys %v active %d", ids, nodes[0].ActiveKey())
	}
}

func TestConfigErrors(t *testing.T) {
	short := Key{ID: 3, Secret: make([]byte, 31)}
	long := Key{ID: 4, Secret: make([]byte, 65)}
	k := Key{ID: 1, Secret: vectorKey}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no key"},
		{Config{Keys: []Key{k}, ActiveKey: 2}, "active key 2 is not among the keys"},
		{Config{Keys: []Key{{ID: 0, Secret: vectorKey}}}, "key id 0"},
		{Config{Keys: []Key{k, short}, ActiveKey: 1}, "key 3 is 31 bytes"},
		{Config{Keys: []Key{k, long}, ActiveKey: 1}, "key 4 is 65 bytes"},
		{Config{Keys: []Key{k, k}, ActiveKey: 1}, "key id 1 given twice"},
		{Config{Keys: []Key{k}, ActiveKey: 1, Window: 301 * time.Second}, "window 5m1s"},
		{Config{Keys: []Key{k}, ActiveKey: 1, Window: 1500 * time.Millisecond}, "window 1.5s"},
		{Config{Keys: []Key{k}, ActiveKey: 1, Mode: 9}, "mode Mode(9)"},
	} {
		err := Check(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	// The caller's key bytes are copied: changing them later changes nothing.
	secret := bytes.Clone(vectorKey)
	a := newAuth(t, Config{Keys: []Key{{ID: 1, Secret: secret}}, ActiveKey: 1})
	secret[0] ^= 0xff
	if got := a.Sign(vectorTime, srcV4, interval, bytes.Clone(vectorV4[:12])); !bytes.Equal(got, vectorV4) {
		t.Fatal("the authenticator shares the caller's key bytes")
	}
}

func TestResultLabels(t *testing.T) {
	seen := map[string]bool{}
	for r := OK; r < NumResults; r++ {
		s := r.String()
		if s == "" || strings.HasPrefix(s, "Result(") || seen[s] {
			t.Errorf("result %d has label %q", r, s)
		}
		seen[s] = true
	}
}

// TestPreviousSecret: a key file changed in place. The node that read the
// new content first keeps signing with the previous secret and verifies
// both, so nodes still on the old content keep accepting it; once it signs
// with the new one, nodes that have both accept it too.
func TestPreviousSecret(t *testing.T) {
	old, next := Key{ID: 1, Secret: vectorKey}, Key{ID: 1, Secret: bytes.Repeat([]byte{7}, 32)}
	lagging := newAuth(t, Config{Keys: []Key{old}, ActiveKey: 1})
	updated := newAuth(t, Config{Keys: []Key{next}, ActiveKey: 1, Previous: []Key{old}, SignPrevious: true})
	now := vectorTime
	p := updated.Sign(now, srcV4, interval, bytes.Clone(vectorV4[:12]))
	if got, _ := lagging.Verify(now, srcV4, interval, p[:12], p[12:]); got != OK {
		t.Fatalf("node on the old content refused the updated node: %v", got)
	}
	q := lagging.Sign(now, srcB, interval, bytes.Clone(vectorV4[:12]))
	if got, _ := updated.Verify(now, srcB, interval, q[:12], q[12:]); got != OK {
		t.Fatalf("updated node refused the old secret: %v", got)
	}
	// Later: the lagging node has both too, the updated one signs new.
	if err := lagging.Reconfigure(Config{Keys: []Key{next}, ActiveKey: 1, Previous: []Key{old}}); err != nil {
		t.Fatal(err)
	}
	if err := updated.Reconfigure(Config{Keys: []Key{next}, ActiveKey: 1, Previous: []Key{old}}); err != nil {
		t.Fatal(err)
	}
	p = updated.Sign(now, srcV4, interval, bytes.Clone(vectorV4[:12]))
	if got, _ := lagging.Verify(now, srcV4, interval, p[:12], p[12:]); got != OK {
		t.Fatalf("new secret refused: %v", got)
	}
	// Without the previous secret, the old one no longer verifies.
	plain := newAuth(t, Config{Keys: []Key{next}, ActiveKey: 1})
	q = newAuth(t, Config{Keys: []Key{old}, ActiveKey: 1}).Sign(now, srcB, interval, bytes.Clone(vectorV4[:12]))
	if got, _ := plain.Verify(now, srcB, interval, q[:12], q[12:]); got != BadMAC {
		t.Fatalf("old secret accepted without Previous: %v", got)
	}
	if err := Check(Config{Keys: []Key{next}, ActiveKey: 1, Previous: []Key{{ID: 2, Secret: vectorKey}}}); err == nil {
		t.Fatal("a previous secret of an unknown id was accepted")
	}
}
