package wire

import (
	"bytes"
	"testing"
)

// FuzzParse: whatever parses re-encodes to the same bytes (one encoding per
// message, so the MAC covers exactly what the receiver acts on), and no
// input makes Parse panic.
func FuzzParse(f *testing.F) {
	for _, m := range []*Message{sampleAnswer(), sampleDiscovery(), sampleAnswerV2()} {
		for _, key := range [][]byte{nil, testKey} {
			b, err := Seal(m, key)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if m != nil {
				t.Fatalf("Parse returned a message with error %v", err)
			}
			return
		}
		out, err := Marshal(m)
		if err != nil {
			t.Fatalf("Marshal of a parsed message: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed the bytes\n in  %x\n out %x", b, out)
		}
		Verify(b, [][]byte{testKey})
	})
}
