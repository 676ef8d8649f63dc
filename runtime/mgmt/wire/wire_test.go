package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

func sampleAnswer() *Message {
	return &Message{
		Header: Header{Version: Version, Type: TypeAnswer, BootID: 0x0102030405060708, Seq: 7, Time: 1_700_000_000_123},
		Answer: &Answer{
			Cluster: "edge", Node: "scan-1", Health: HealthAvailable, Load: 250,
			Digest:    [DigestLen]byte{1, 2, 3},
			Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.21/24"), netip.MustParsePrefix("2001:db8::21/64")},
		},
	}
}

// sampleAnswerV2 is a version-2 answer: with the distribution report.
func sampleAnswerV2() *Message {
	m := sampleAnswer()
	m.Version = Version2
	m.Answer.Report = &Report{Serving: true, MAC: [6]byte{0x02, 0, 0, 0, 0, 0x21}}
	return m
}

func sampleDiscovery() *Message {
	return &Message{
		Header:    Header{Version: Version, Type: TypeDiscovery, BootID: 9, Seq: 1, Time: 1_700_000_000_000},
		Discovery: &Discovery{Cluster: "edge", Node: "dir-a", Digest: [DigestLen]byte{0xff}, IntervalMillis: 1000},
	}
}

func TestSealParseVerify(t *testing.T) {
	d2 := sampleDiscovery()
	d2.Version = Version2
	for _, m := range []*Message{sampleAnswer(), sampleDiscovery(), sampleAnswerV2(), d2} {
		for _, key := range [][]byte{nil, testKey} {
			b, err := Seal(m, key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(m, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("%v key=%v: round trip (-sent +parsed):\n%s", m.Type, key != nil, diff)
			}
			if key == nil {
				continue
			}
			if i := Verify(b, [][]byte{bytes.Repeat([]byte{1}, 32), key}); i != 1 {
				t.Errorf("Verify with the right key second: %d, want 1", i)
			}
			if i := Verify(b, [][]byte{bytes.Repeat([]byte{1}, 32)}); i != -1 {
				t.Errorf("Verify with a wrong key: %d, want -1", i)
			}
			b[HeaderLen] ^= 1 // tamper with the body
			if i := Verify(b, [][]byte{key}); i != -1 {
				t.Errorf("Verify of a tampered message: %d, want -1", i)
			}
		}
	}
}

// The header layout is part of the specification: pin it byte by byte.
func TestHeaderLayout(t *testing.T) {
	b, err := Seal(sampleDiscovery(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "6d67" + "01" + "01" + "00" + "00" + "002f" +
		"0000000000000009" + "0000000000000001" + "0000018bcfe56800" +
		"04" + hex.EncodeToString([]byte("edge")) + "05" + hex.EncodeToString([]byte("dir-a")) +
		"ff" + strings.Repeat("00", 31) + "000003e8"
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("encoding\n got %s\nwant %s", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	good, err := Seal(sampleAnswer(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		in   []byte
		want Reason
	}{
		{"empty", nil, ReasonShort},
		{"header cut", good[:HeaderLen-1], ReasonShort},
		{"magic", mod(func(b []byte) []byte { b[0] = 'x'; return b }), ReasonMagic},
		{"version 3", mod(func(b []byte) []byte { b[2] = 3; return b }), ReasonVersion},
		{"version 0", mod(func(b []byte) []byte { b[2] = 0; return b }), ReasonVersion},
		{"version 2 answer without its report", mod(func(b []byte) []byte { b[2] = 2; return b }), ReasonMalformed},
		{"type 0", mod(func(b []byte) []byte { b[3] = 0; return b }), ReasonType},
		{"type 3", mod(func(b []byte) []byte { b[3] = 3; return b }), ReasonType},
		{"auth scheme 2", mod(func(b []byte) []byte { b[4] = 2; return b }), ReasonAuthType},
		{"auth none but MAC present", mod(func(b []byte) []byte { b[4] = 0; return b }), ReasonLength},
		{"reserved", mod(func(b []byte) []byte { b[5] = 1; return b }), ReasonMalformed},
		{"truncated MAC", good[:len(good)-1], ReasonLength},
		{"trailing byte", append(append([]byte(nil), good...), 0), ReasonLength},
		{"boot id 0", mod(func(b []byte) []byte { copy(b[8:16], make([]byte, 8)); return b }), ReasonMalformed},
		{"seq 0", mod(func(b []byte) []byte { copy(b[16:24], make([]byte, 8)); return b }), ReasonMalformed},
		{"empty cluster", mod(func(b []byte) []byte { b[HeaderLen] = 0; return b }), ReasonMalformed},
		{"name runs past body", mod(func(b []byte) []byte { b[HeaderLen] = 200; return b }), ReasonMalformed},
		{"health 0", mod(func(b []byte) []byte { b[HeaderLen+1+4+1+6+32] = 0; return b }), ReasonMalformed},
		{"answer reserved", mod(func(b []byte) []byte { b[HeaderLen+1+4+1+6+33] = 1; return b }), ReasonMalformed},
		{"too many addresses", mod(func(b []byte) []byte { b[HeaderLen+1+4+1+6+36] = MaxAddresses + 1; return b }), ReasonMalformed},
		{"address family 5", mod(func(b []byte) []byte { b[HeaderLen+1+4+1+6+37] = 5; return b }), ReasonMalformed},
		{"prefix length 33", mod(func(b []byte) []byte { b[HeaderLen+1+4+1+6+37+5] = 33; return b }), ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.in)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %+v, %v; want a *ParseError", m, err)
			}
			if pe.Reason != tt.want {
				t.Errorf("reason %v (%v), want %v", pe.Reason, err, tt.want)
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	tests := []struct {
		name string
		mod  func(m *Message)
	}{
		{"empty node", func(m *Message) { m.Answer.Node = "" }},
		{"long cluster", func(m *Message) { m.Answer.Cluster = strings.Repeat("c", 256) }},
		{"health", func(m *Message) { m.Answer.Health = 9 }},
		{"both bodies", func(m *Message) { m.Discovery = &Discovery{Cluster: "c", Node: "n"} }},
		{"no body", func(m *Message) { m.Answer = nil }},
		{"zero seq", func(m *Message) { m.Seq = 0 }},
		{"too many addresses", func(m *Message) {
			m.Answer.Addresses = make([]netip.Prefix, MaxAddresses+1)
			for i := range m.Answer.Addresses {
				m.Answer.Addresses[i] = netip.MustParsePrefix("192.0.2.1/32")
			}
		}},
		{"invalid prefix", func(m *Message) { m.Answer.Addresses = []netip.Prefix{{}} }},
	}
	for _, tt := range tests {
		m := sampleAnswer()
		tt.mod(m)
		if b, err := Seal(m, testKey); err == nil {
			t.Errorf("%s: Seal succeeded with %x", tt.name, b)
		}
	}
}

// The largest message fits an IPv4 UDP datagram on a 1500-byte link.
func TestMaxMessage(t *testing.T) {
	m := sampleAnswerV2()
	m.Answer.Cluster = strings.Repeat("c", MaxNameLen)
	m.Answer.Node = strings.Repeat("n", MaxNameLen)
	m.Answer.Addresses = nil
	for i := range MaxAddresses {
		m.Answer.Addresses = append(m.Answer.Addresses, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), 64))
	}
	b, err := Seal(m, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MaxMessageLen || MaxMessageLen > 1500-20-8 {
		t.Errorf("largest message is %d bytes, MaxMessageLen %d, IPv4 UDP payload limit %d", len(b), MaxMessageLen, 1500-28)
	}
}

func TestParseKeyFile(t *testing.T) {
	k1 := strings.Repeat("ab", 32)
	k2 := strings.Repeat("cd", 48)
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr string
	}{
		{"one key", k1 + "\n", 1, ""},
		{"comments and rotation", "# current\n" + k1 + "\n\n# previous\n  " + k2 + "  \n", 2, ""},
		{"short", strings.Repeat("ab", 31), 0, "at least 32"},
		{"not hex", strings.Repeat("zz", 32), 0, "not a hex key"},
		{"odd digits", k1 + "a", 0, "not a hex key"},
		{"empty", "# nothing\n\n", 0, "no key"},
		{"duplicate", k1 + "\n" + k1, 0, "twice"},
		{"too many", strings.Join([]string{k1, k2, strings.Repeat("01", 32), strings.Repeat("02", 32), strings.Repeat("03", 32)}, "\n"), 0, "at most"},
	}
	for _, tt := range tests {
		keys, err := ParseKeyFile([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(keys) != tt.want {
			t.Errorf("%s: %d keys, %v; want %d", tt.name, len(keys), err, tt.want)
		}
	}
}

// TestReport pins the version-2 report: after the addresses, flags
// (bit 0 serving), a reserved zero octet and the MAC; a receiver refuses
// unknown flags and a non-zero reserved octet, and a sender refuses a
// report in version 1 or none in version 2.
func TestReport(t *testing.T) {
	m := sampleAnswerV2()
	b, err := Seal(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b[2] != 2 {
		t.Fatalf("version octet %d", b[2])
	}
	tail := b[len(b)-ReportLen:]
	if want := []byte{1, 0, 0x02, 0, 0, 0, 0, 0x21}; !bytes.Equal(tail, want) {
		t.Fatalf("report octets %x, want %x", tail, want)
	}
	for name, edit := range map[string]func([]byte){
		"unknown flag": func(b []byte) { b[len(b)-8] |= 2 },
		"reserved":     func(b []byte) { b[len(b)-7] = 1 },
	} {
		bad := append([]byte(nil), b...)
		edit(bad)
		var pe *ParseError
		if _, err := Parse(bad); !errors.As(err, &pe) || pe.Reason != ReasonMalformed {
			t.Errorf("%s: Parse = %v, want malformed", name, err)
		}
	}
	m.Answer.Report.Serving = false
	b, _ = Seal(m, nil)
	if got, err := Parse(b); err != nil || got.Answer.Report.Serving || got.Answer.Report.MAC != m.Answer.Report.MAC {
		t.Errorf("not serving: %+v %v", got, err)
	}
	v1 := sampleAnswerV2()
	v1.Version = Version
	if _, err := Seal(v1, nil); err == nil {
		t.Error("a version 1 answer with a report was sealed")
	}
	v2 := sampleAnswer()
	v2.Version = Version2
	if _, err := Seal(v2, nil); err == nil {
		t.Error("a version 2 answer without a report was sealed")
	}
}
