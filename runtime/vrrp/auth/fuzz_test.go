package auth

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// FuzzTrailer: any 28 bytes decode and encode back to themselves.
func FuzzTrailer(f *testing.F) {
	f.Add(vectorV4[12:])
	f.Add(vectorV6[24:])
	f.Add(make([]byte, TrailerLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ParseTrailer(b)
		if (err == nil) != (len(b) == TrailerLen) {
			t.Fatalf("%d bytes: err %v", len(b), err)
		}
		if err != nil {
			return
		}
		if got := tr.Append(nil); !bytes.Equal(got, b) {
			t.Fatalf("round trip %x -> %+v -> %x", b, tr, got)
		}
	})
}

// FuzzVerify: whatever arrives, Verify answers without panicking; what a
// holder of the key signs verifies once (and is a replay after), and
// changing any covered byte of it fails.
func FuzzVerify(f *testing.F) {
	f.Add(vectorV4[:12], vectorV4[12:], int64(0x68000000), false, uint16(0))
	f.Add(vectorV6[:24], vectorV6[24:], int64(0x68000000), true, uint16(5))
	f.Add([]byte{0x31, 1, 2, 1, 0, 100, 0, 0}, make([]byte, TrailerLen), int64(0), false, uint16(3))
	f.Fuzz(func(t *testing.T, msg, tr []byte, sec int64, ipv6 bool, flip uint16) {
		src := srcV4
		if ipv6 {
			src = srcV6
		}
		now := time.Unix(sec, 0)
		rx := newAuth(t, vectorConfig())
		if res, _ := rx.Verify(now, src, interval, msg, tr); res == OK {
			// Only a well-formed trailer can carry a valid MAC.
			if got, _ := ParseTrailer(tr); len(msg) < minMessageLen || got.Type != TypeHMACSHA256 || got.Reserved != 0 {
				t.Fatalf("accepted a malformed input")
			}
		}
		if len(msg) < minMessageLen {
			return
		}
		tx := newAuth(t, vectorConfig())
		signed := tx.Sign(now, src, interval, bytes.Clone(msg))
		m, trailer := signed[:len(msg)], signed[len(msg):]
		rx = newAuth(t, vectorConfig())
		if res, _ := rx.Verify(now, src, interval, m, trailer); res != OK {
			t.Fatalf("own signature refused: %v", res)
		}
		if res, _ := rx.Verify(now, src, interval, m, trailer); res != Replay {
			t.Fatalf("second delivery: %v", res)
		}
		// Flip one bit anywhere but the checksum field (not covered) and
		// the timestamp seconds (which the window may catch first).
		i := int(flip) % len(signed)
		if i == 6 || i == 7 || (i >= len(msg)+4 && i < len(msg)+8) {
			return
		}
		bad := bytes.Clone(signed)
		bad[i] ^= 1 << (flip % 8)
		rx = newAuth(t, vectorConfig())
		if res, _ := rx.Verify(now, src, interval, bad[:len(msg)], bad[len(msg):]); res == OK {
			t.Fatalf("byte %d flipped, still accepted", i)
		}
	})
}

var benchSink Result

// BenchmarkSign and BenchmarkVerify: the cost added per advert.
func BenchmarkSign(b *testing.B) {
	a := newAuth(b, vectorConfig())
	msg := vectorV4[:12]
	buf := make([]byte, 0, 64)
	now := vectorTime
	b.ReportAllocs()
	for b.Loop() {
		buf = a.Sign(now, srcV4, interval, append(buf[:0], msg...))
	}
}

func BenchmarkVerify(b *testing.B) {
	tx := newAuth(b, vectorConfig())
	rx := newAuth(b, vectorConfig())
	msg := vectorV4[:12]
	now := vectorTime
	pkts := make([][]byte, 1024)
	for i := range pkts {
		pkts[i] = tx.Sign(now, srcV4, interval, bytes.Clone(msg))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := pkts[i%len(pkts)]
		if i%len(pkts) == 0 {
			rx.marks = map[netip.Addr]Seq{}
		}
		benchSink, _ = rx.Verify(now, srcV4, interval, p[:12], p[12:])
		i++
	}
}

// BenchmarkVerifyStale: what a flood of stale forgeries costs (no HMAC).
func BenchmarkVerifyStale(b *testing.B) {
	rx := newAuth(b, vectorConfig())
	now := vectorTime.Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		benchSink, _ = rx.Verify(now, srcV4, interval, vectorV4[:12], vectorV4[12:])
	}
}
