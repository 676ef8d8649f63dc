// Package wire encodes and decodes management protocol messages
// (docs/management-protocol.md): a fixed 32-byte header, a body whose fields
// come in a fixed order, and an HMAC-SHA256 trailer when authenticated.
//
// The encoding is canonical: Parse accepts exactly the bytes Marshal
// produces, so Marshal(Parse(b)) == b for every b that parses. That keeps the
// MAC meaningful (there is one encoding per message) and lets the decoder be
// fuzzed with a round-trip property.
package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
)

// Protocol constants.
const (
	Magic = 0x6d67 // "mg"
	// Version is the version a sender uses unless told otherwise; version 2
	// adds the distribution report to answers. Receivers accept 1 and 2.
	Version    = 1
	Version2   = 2
	MaxVersion = Version2
	HeaderLen  = 32
	MACLen     = sha256.Size
	MaxNameLen = 255
	// MaxAddresses bounds the addresses of one answer so that the largest
	// message (1,189 bytes) fits an IPv4 UDP datagram on any Ethernet link.
	MaxAddresses = 32
	// MaxMessageLen is the largest valid message.
	MaxMessageLen = HeaderLen + 1 + MaxNameLen + 1 + MaxNameLen + DigestLen + 1 + 1 + 2 + 1 + MaxAddresses*18 + ReportLen + MACLen
	// ReportLen is the size of a version-2 answer's distribution report.
	ReportLen = 8
	DigestLen = sha256.Size
)

// Type is the message type.
type Type uint8

const (
	TypeDiscovery Type = 1 // broadcast by the Active director
	TypeAnswer    Type = 2 // unicast by every node to each director it hears
)

func (t Type) String() string {
	switch t {
	case TypeDiscovery:
		return "discovery"
	case TypeAnswer:
		return "answer"
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

// Auth is the authentication scheme of a message.
type Auth uint8

const (
	AuthNone       Auth = 0 // only when the plan says unauthenticated
	AuthHMACSHA256 Auth = 1 // 32-byte HMAC-SHA256 trailer over header and body
)

// Health is what an answering node says about itself.
type Health uint8

const (
	HealthAvailable Health = 1 // ready to process traffic
	HealthLeaving   Health = 2 // shutting down: take it out of service now
)

func (h Health) String() string {
	switch h {
	case HealthAvailable:
		return "available"
	case HealthLeaving:
		return "leaving"
	}
	return fmt.Sprintf("health-%d", uint8(h))
}

// Header is the fixed part of every message.
type Header struct {
	// Version of the message: 0 or 1 send version 1; 2 sends version 2.
	// Parse sets it to the version received.
	Version uint8
	Type    Type
	Auth    Auth
	// BootID is drawn at random when the sender starts; sequence numbers
	// restart at 1 with each boot.
	BootID uint64
	// Seq counts the sender's messages within one boot, from 1.
	Seq uint64
	// Time is the sender's wall clock, Unix milliseconds.
	Time int64
}

// Discovery is the body of a discovery message.
type Discovery struct {
	Cluster string
	Node    string
	Digest  [DigestLen]byte // SHA-256 of the sender's plan
	// IntervalMillis is the director's discovery interval.
	IntervalMillis uint32
}

// Answer is the body of an answer message.
type Answer struct {
	Cluster string
	Node    string
	Digest  [DigestLen]byte
	Health  Health
	// Load is the node's load in per mille of its capacity (1-minute load
	// average per CPU x 1000), saturating at 65535.
	Load      uint16
	Addresses []netip.Prefix
	// Report is the distribution report: present exactly in version-2
	// answers.
	Report *Report
}

// Report is what a version-2 answer tells the director for traffic
// distribution (docs/distribution.md).
type Report struct {
	// Serving: the node's own check reaches its proxy port.
	Serving bool
	// MAC of the node's interface on the distribution segment; all zero
	// when the node has none.
	MAC [6]byte
}

// Report flags.
const reportServing = 1

// Message is one decoded message: exactly one of Discovery and Answer is
// set, matching Header.Type. MAC holds the trailer when Auth is HMAC.
type Message struct {
	Header
	Discovery *Discovery
	Answer    *Answer
	MAC       []byte
}

// Reason classifies a parse failure; its String is a stable metric label.
type Reason uint8

const (
	ReasonShort     Reason = iota + 1 // shorter than the header
	ReasonMagic                       // not a management protocol message
	ReasonVersion                     // a version this receiver does not speak
	ReasonType                        // unknown message type
	ReasonAuthType                    // unknown authentication scheme
	ReasonLength                      // length field and datagram size disagree
	ReasonMalformed                   // a field is out of range or the body is inconsistent
)

var reasonNames = [...]string{
	ReasonShort: "short", ReasonMagic: "magic", ReasonVersion: "version", ReasonType: "type",
	ReasonAuthType: "auth-type", ReasonLength: "length", ReasonMalformed: "malformed",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason-%d", uint8(r))
}

// ParseError says why a datagram is not a valid message.
type ParseError struct {
	Reason Reason
	Detail string
}

func (e *ParseError) Error() string { return "mgmt message: " + e.Reason.String() + ": " + e.Detail }

func perr(r Reason, format string, a ...any) error {
	return &ParseError{Reason: r, Detail: fmt.Sprintf(format, a...)}
}

// Parse decodes a datagram. It checks syntax only; the caller verifies the
// MAC (Verify), the sender and freshness.
func Parse(b []byte) (*Message, error) {
	if len(b) < HeaderLen {
		return nil, perr(ReasonShort, "%d bytes, the header alone is %d", len(b), HeaderLen)
	}
	if m := binary.BigEndian.Uint16(b[0:2]); m != Magic {
		return nil, perr(ReasonMagic, "magic %#04x, want %#04x", m, Magic)
	}
	if v := b[2]; v < Version || v > MaxVersion {
		return nil, perr(ReasonVersion, "version %d, this receiver speaks %d..%d", v, Version, MaxVersion)
	}
	var m Message
	m.Version = b[2]
	m.Type = Type(b[3])
	if m.Type != TypeDiscovery && m.Type != TypeAnswer {
		return nil, perr(ReasonType, "unknown type %d", b[3])
	}
	m.Auth = Auth(b[4])
	macLen := 0
	switch m.Auth {
	case AuthNone:
	case AuthHMACSHA256:
		macLen = MACLen
	default:
		return nil, perr(ReasonAuthType, "unknown authentication scheme %d", b[4])
	}
	bodyLen := int(binary.BigEndian.Uint16(b[6:8]))
	if want := HeaderLen + bodyLen + macLen; len(b) != want {
		return nil, perr(ReasonLength, "datagram is %d bytes, header says %d", len(b), want)
	}
	if b[5] != 0 {
		return nil, perr(ReasonMalformed, "reserved byte is %#02x, must be 0", b[5])
	}
	m.BootID = binary.BigEndian.Uint64(b[8:16])
	m.Seq = binary.BigEndian.Uint64(b[16:24])
	m.Time = int64(binary.BigEndian.Uint64(b[24:32]))
	if m.BootID == 0 || m.Seq == 0 {
		return nil, perr(ReasonMalformed, "boot id and sequence number must not be 0")
	}
	r := reader{b: b[HeaderLen : HeaderLen+bodyLen]}
	switch m.Type {
	case TypeDiscovery:
		d := &Discovery{}
		d.Cluster = r.name()
		d.Node = r.name()
		r.bytes(d.Digest[:])
		d.IntervalMillis = r.u32()
		m.Discovery = d
	case TypeAnswer:
		a := &Answer{}
		a.Cluster = r.name()
		a.Node = r.name()
		r.bytes(a.Digest[:])
		a.Health = Health(r.u8())
		if r.err == nil && a.Health != HealthAvailable && a.Health != HealthLeaving {
			r.fail("unknown health %d", a.Health)
		}
		if rsv := r.u8(); r.err == nil && rsv != 0 {
			r.fail("reserved byte is %#02x, must be 0", rsv)
		}
		a.Load = r.u16()
		n := int(r.u8())
		if r.err == nil && n > MaxAddresses {
			r.fail("%d addresses, at most %d", n, MaxAddresses)
		}
		for i := 0; i < n && r.err == nil; i++ {
			a.Addresses = append(a.Addresses, r.prefix())
		}
		if m.Version >= Version2 {
			a.Report = r.report()
		}
		m.Answer = a
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, perr(ReasonMalformed, "%d bytes after the last field", len(r.b))
	}
	if macLen > 0 {
		m.MAC = append([]byte(nil), b[len(b)-MACLen:]...)
	}
	return &m, nil
}

// Marshal encodes m with m.MAC as the trailer (which must be MACLen bytes
// when m.Auth is HMAC). Use Seal to compute the MAC.
func Marshal(m *Message) ([]byte, error) {
	return appendMessage(make([]byte, 0, 256), m, true)
}

// Seal sets m's authentication from key (none when key is nil), encodes m
// and appends the MAC. m.MAC is set to the computed trailer.
func Seal(m *Message, key []byte) ([]byte, error) {
	if key == nil {
		m.Auth, m.MAC = AuthNone, nil
		return Marshal(m)
	}
	m.Auth = AuthHMACSHA256
	b, err := appendMessage(make([]byte, 0, 256), m, false)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	b = mac.Sum(b)
	m.MAC = append(m.MAC[:0], b[len(b)-MACLen:]...)
	return b, nil
}

// Verify reports whether the HMAC trailer of the datagram b (already
// parsed, with Auth HMAC) was made with one of keys; it returns the index
// of the key that matched, or -1.
func Verify(b []byte, keys [][]byte) int {
	if len(b) < HeaderLen+MACLen {
		return -1
	}
	data, got := b[:len(b)-MACLen], b[len(b)-MACLen:]
	var sum [MACLen]byte
	for i, k := range keys {
		mac := hmac.New(sha256.New, k)
		mac.Write(data)
		if hmac.Equal(mac.Sum(sum[:0]), got) {
			return i
		}
	}
	return -1
}

// Verifier checks MACs like Verify, reusing one HMAC state per key: a
// director verifies thousands of answers per interval. Not safe for
// concurrent use.
type Verifier struct {
	keys [][]byte
	macs []hash.Hash
	sum  [MACLen]byte
}

// NewVerifier returns a Verifier for keys.
func NewVerifier(keys [][]byte) *Verifier {
	v := &Verifier{keys: keys}
	for _, k := range keys {
		v.macs = append(v.macs, hmac.New(sha256.New, k))
	}
	return v
}

// Verify is Verify(b, keys) for the Verifier's keys.
func (v *Verifier) Verify(b []byte) int {
	if len(b) < HeaderLen+MACLen {
		return -1
	}
	data, got := b[:len(b)-MACLen], b[len(b)-MACLen:]
	for i, mac := range v.macs {
		mac.Reset()
		mac.Write(data)
		if hmac.Equal(mac.Sum(v.sum[:0]), got) {
			return i
		}
	}
	return -1
}

var errMarshal = errors.New("mgmt message")

func appendMessage(b []byte, m *Message, withMAC bool) ([]byte, error) {
	bad := func(format string, a ...any) ([]byte, error) {
		return nil, fmt.Errorf("%w: %s", errMarshal, fmt.Sprintf(format, a...))
	}
	if m.BootID == 0 || m.Seq == 0 {
		return bad("boot id and sequence number must not be 0")
	}
	macLen := 0
	switch m.Auth {
	case AuthNone:
	case AuthHMACSHA256:
		macLen = MACLen
		if withMAC && len(m.MAC) != MACLen {
			return bad("MAC is %d bytes, want %d", len(m.MAC), MACLen)
		}
	default:
		return bad("unknown authentication scheme %d", m.Auth)
	}
	version := m.Version
	switch version {
	case 0:
		version = Version
	case Version, Version2:
	default:
		return bad("unknown version %d", m.Version)
	}
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, Magic)
	b = append(b, version, byte(m.Type), byte(m.Auth), 0, 0, 0) // length filled in below
	b = binary.BigEndian.AppendUint64(b, m.BootID)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Time))
	var err error
	switch m.Type {
	case TypeDiscovery:
		d := m.Discovery
		if d == nil || m.Answer != nil {
			return bad("a discovery message needs a Discovery body and no other")
		}
		if b, err = appendName(b, "cluster", d.Cluster); err != nil {
			return nil, err
		}
		if b, err = appendName(b, "node", d.Node); err != nil {
			return nil, err
		}
		b = append(b, d.Digest[:]...)
		b = binary.BigEndian.AppendUint32(b, d.IntervalMillis)
	case TypeAnswer:
		a := m.Answer
		if a == nil || m.Discovery != nil {
			return bad("an answer message needs an Answer body and no other")
		}
		if a.Health != HealthAvailable && a.Health != HealthLeaving {
			return bad("unknown health %d", a.Health)
		}
		if len(a.Addresses) > MaxAddresses {
			return bad("%d addresses, at most %d", len(a.Addresses), MaxAddresses)
		}
		if (a.Report != nil) != (version >= Version2) {
			return bad("a version %d answer must %shave a distribution report", version, map[bool]string{true: "", false: "not "}[version >= Version2])
		}
		if b, err = appendName(b, "cluster", a.Cluster); err != nil {
			return nil, err
		}
		if b, err = appendName(b, "node", a.Node); err != nil {
			return nil, err
		}
		b = append(b, a.Digest[:]...)
		b = append(b, byte(a.Health), 0)
		b = binary.BigEndian.AppendUint16(b, a.Load)
		b = append(b, byte(len(a.Addresses)))
		for _, p := range a.Addresses {
			ip := p.Addr()
			switch {
			case !p.IsValid() || ip.Zone() != "":
				return bad("address %v is not a valid prefix", p)
			case ip.Is4():
				a4 := ip.As4()
				b = append(b, 4)
				b = append(b, a4[:]...)
			default:
				a16 := ip.As16()
				b = append(b, 6)
				b = append(b, a16[:]...)
			}
			b = append(b, byte(p.Bits()))
		}
		if r := a.Report; r != nil {
			var flags byte
			if r.Serving {
				flags |= reportServing
			}
			b = append(b, flags, 0)
			b = append(b, r.MAC[:]...)
		}
	default:
		return bad("unknown type %d", m.Type)
	}
	bodyLen := len(b) - start - HeaderLen
	binary.BigEndian.PutUint16(b[start+6:], uint16(bodyLen))
	if len(b)-start+macLen > MaxMessageLen {
		return bad("message would be %d bytes, at most %d", len(b)-start+macLen, MaxMessageLen)
	}
	if withMAC && macLen > 0 {
		b = append(b, m.MAC...)
	}
	return b, nil
}

func appendName(b []byte, field, s string) ([]byte, error) {
	if len(s) == 0 || len(s) > MaxNameLen {
		return nil, fmt.Errorf("%w: %s name %q must be 1..%d bytes", errMarshal, field, s, MaxNameLen)
	}
	b = append(b, byte(len(s)))
	return append(b, s...), nil
}

// reader consumes body fields in order; the first failure sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = perr(ReasonMalformed, format, a...)
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("body ends %d bytes early", n-len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) bytes(dst []byte) {
	if v := r.take(len(dst)); v != nil {
		copy(dst, v)
	}
}

func (r *reader) name() string {
	n := int(r.u8())
	if r.err == nil && n == 0 {
		r.fail("empty name")
		return ""
	}
	return string(r.take(n))
}

func (r *reader) prefix() netip.Prefix {
	fam := r.u8()
	var ip netip.Addr
	switch {
	case r.err != nil:
		return netip.Prefix{}
	case fam == 4:
		var a [4]byte
		r.bytes(a[:])
		ip = netip.AddrFrom4(a)
	case fam == 6:
		var a [16]byte
		r.bytes(a[:])
		ip = netip.AddrFrom16(a)
	default:
		r.fail("address family %d is not 4 or 6", fam)
		return netip.Prefix{}
	}
	bits := int(r.u8())
	if r.err == nil && bits > ip.BitLen() {
		r.fail("prefix length %d for %v", bits, ip)
	}
	return netip.PrefixFrom(ip, bits)
}

// report reads a version-2 answer's distribution report: flags, a
// reserved octet, the MAC.
func (r *reader) report() *Report {
	flags := r.u8()
	if r.err == nil && flags&^reportServing != 0 {
		r.fail("unknown report flags %#02x", flags)
	}
	if rsv := r.u8(); r.err == nil && rsv != 0 {
		r.fail("report reserved byte is %#02x, must be 0", rsv)
	}
	rep := &Report{Serving: flags&reportServing != 0}
	r.bytes(rep.MAC[:])
	if r.err != nil {
		return nil
	}
	return rep
}
