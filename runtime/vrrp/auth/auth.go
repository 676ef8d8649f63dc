// Package auth authenticates VRRPv3 adverts the way keepalived's auth_hmac
// does (keepalived 2.4.2 and later, draft-cassen-vrrp-auth-hmac): a 28-byte
// trailer after the address list carrying a key id, a 64-bit time-based
// sequence and a truncated HMAC-SHA256 over a pseudo-header, the message
// and the trailer's head.
//
// Like the rest of runtime/vrrp it is pure: the caller passes the time. An
// Authenticator holds one virtual router's keys, its send sequence and the
// replay high-water mark of every sender it has accepted.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"slices"
	"time"
)

// Wire constants of the trailer.
const (
	// TrailerLen is the size of the trailer after the VRRP message.
	TrailerLen = 28
	// TypeHMACSHA256 is the only scheme: HMAC-SHA256 truncated to MACLen bytes.
	TypeHMACSHA256 = 1
	// MACLen is the truncated HMAC carried in the trailer.
	MACLen = 16
	// headLen is the part of the trailer before the MAC; it is covered by the MAC.
	headLen = TrailerLen - MACLen
	// pseudoLen is the pseudo-header bound into the MAC.
	pseudoLen = 20
	// checksumOff is the VRRP checksum field, read as zero by the MAC.
	checksumOff = 6
	// minMessageLen is a VRRP header: anything shorter cannot be signed.
	minMessageLen = 8
)

// Key and window bounds (keepalived's, so one configuration suits both).
const (
	MinKeyLen     = 32
	MaxKeyLen     = 64
	MinWindow     = time.Second
	MaxWindow     = 300 * time.Second
	minAutoWindow = 5 * time.Second
)

// Mode says what a router sends and what it accepts.
type Mode uint8

const (
	// ModeEnforce signs every advert and accepts only valid trailers (the default).
	ModeEnforce Mode = iota + 1
	// ModePermissive signs every advert and also accepts adverts without a trailer.
	ModePermissive
	// ModeReceiveOnly signs nothing and accepts adverts with or without a
	// trailer; a trailer that is present must be valid.
	ModeReceiveOnly
)

var modeNames = map[Mode]string{ModeEnforce: "enforce", ModePermissive: "permissive", ModeReceiveOnly: "receive-only"}

func (m Mode) String() string {
	if s, ok := modeNames[m]; ok {
		return s
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode reads "enforce", "permissive" or "receive-only".
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if name == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("auth: mode %q is not enforce, permissive or receive-only", s)
}

// Key is one shared secret and the id that names it on the wire.
type Key struct {
	ID     uint8 // 1..255
	Secret []byte
}

// Config is a router's authentication setting.
type Config struct {
	Mode Mode // zero means ModeEnforce
	// Keys verify; the one with ActiveKey also signs.
	Keys      []Key
	ActiveKey uint8
	// Window is the freshness window in whole seconds, 1s..300s; zero
	// means DefaultWindow of the advert interval (the caller's choice).
	Window time.Duration
	// Previous holds earlier secrets of key ids in Keys (a key file
	// changed in place): an advert that fails with the current secret of
	// its id is tried with the previous one. With SignPrevious the active
	// key still signs with its previous secret. Together they let a
	// changed key file reach every node before anyone depends on it.
	Previous     []Key
	SignPrevious bool
}

// DefaultWindow is keepalived's default: three advert intervals in whole
// seconds, at least 5 s and at most 300 s.
func DefaultWindow(advertInterval time.Duration) time.Duration {
	w := (3 * advertInterval).Truncate(time.Second)
	return min(max(w, minAutoWindow), MaxWindow)
}

// Result is the outcome of verifying one advert; its String is a stable label.
type Result uint8

const (
	OK         Result = iota // valid, fresh and newer than the sender's last
	Missing                  // no trailer where one is required
	Malformed                // unknown scheme or reserved bits set
	Stale                    // timestamp outside the window (checked before the MAC)
	UnknownKey               // a key id this router does not have
	BadMAC                   // the MAC does not match
	Replay                   // not newer than the sender's high-water mark
	NumResults
)

var resultNames = [NumResults]string{"ok", "missing", "malformed", "stale", "unknown-key", "bad-mac", "replay"}

func (r Result) String() string {
	if r < NumResults {
		return resultNames[r]
	}
	return fmt.Sprintf("Result(%d)", uint8(r))
}

// Seq is the 64-bit sequence of the trailer: UTC seconds (32 bits), a
// 1/65536-second fraction (16 bits) and a counter (16 bits).
type Seq uint64

// SeqAt is the sequence for time t with the counter zero.
func SeqAt(t time.Time) Seq {
	frac := uint64(t.Nanosecond()) << 16 / uint64(time.Second)
	return Seq(uint64(uint32(t.Unix()))<<32 | frac<<16)
}

// Sec is the seconds field.
func (s Seq) Sec() uint32 { return uint32(s >> 32) }

// After reports whether s comes after o in serial-number arithmetic
// (RFC 1982), so ordering survives the wrap of the 64-bit field.
func (s Seq) After(o Seq) bool { return int64(s-o) > 0 }

// Trailer is the decoded trailer.
type Trailer struct {
	Type     uint8
	KeyID    uint8
	Reserved uint16
	Seq      Seq
	MAC      [MACLen]byte
}

// ParseTrailer decodes exactly TrailerLen bytes. It checks only the length;
// what the fields mean is Verify's business.
func ParseTrailer(b []byte) (Trailer, error) {
	if len(b) != TrailerLen {
		return Trailer{}, fmt.Errorf("auth: trailer of %d bytes, want %d", len(b), TrailerLen)
	}
	t := Trailer{
		Type:     b[0],
		KeyID:    b[1],
		Reserved: binary.BigEndian.Uint16(b[2:]),
		Seq:      Seq(binary.BigEndian.Uint64(b[4:])),
	}
	copy(t.MAC[:], b[headLen:])
	return t, nil
}

// Append encodes the trailer after b.
func (t *Trailer) Append(b []byte) []byte {
	b = append(b, t.Type, t.KeyID)
	b = binary.BigEndian.AppendUint16(b, t.Reserved)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Seq))
	return append(b, t.MAC[:]...)
}

// keyState is a key with its HMAC prepared once (Reset reuses the keyed state).
type keyState struct {
	id     uint8
	secret []byte
	mac    hash.Hash
	prev   hash.Hash // the previous secret of this id, or nil
}

// Authenticator signs and verifies the adverts of one virtual router. It
// is not safe for concurrent use.
type Authenticator struct {
	cfg    Config
	keys   []keyState
	active *keyState
	// sendSeq is the last sequence signed.
	sendSeq Seq
	// marks are the high-water marks of senders whose adverts verified.
	marks map[netip.Addr]Seq

	pseudo [pseudoLen]byte // scratch, kept here so it does not escape per call
	sum    [sha256.Size]byte
	want   [MACLen]byte
}

var zeros [MACLen]byte

// New checks cfg and returns an Authenticator using it.
func New(cfg Config) (*Authenticator, error) {
	a := &Authenticator{marks: map[netip.Addr]Seq{}}
	if err := a.Reconfigure(cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// Check validates cfg without using it.
func Check(cfg Config) error {
	_, err := normalize(cfg)
	return err
}

func normalize(cfg Config) (Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cfg.Mode == 0 {
		cfg.Mode = ModeEnforce
	}
	if _, ok := modeNames[cfg.Mode]; !ok {
		bad("mode %v is not enforce, permissive or receive-only", cfg.Mode)
	}
	if len(cfg.Keys) == 0 {
		bad("no key")
	}
	keys := make([]Key, 0, len(cfg.Keys))
	for _, k := range cfg.Keys {
		switch {
		case k.ID == 0:
			bad("key id 0 is invalid (1..255)")
		case len(k.Secret) < MinKeyLen || len(k.Secret) > MaxKeyLen:
			bad("key %d is %d bytes, want %d..%d", k.ID, len(k.Secret), MinKeyLen, MaxKeyLen)
		case slices.ContainsFunc(keys, func(o Key) bool { return o.ID == k.ID }):
			bad("key id %d given twice", k.ID)
		}
		keys = append(keys, Key{ID: k.ID, Secret: slices.Clone(k.Secret)})
	}
	cfg.Keys = keys
	prev := make([]Key, 0, len(cfg.Previous))
	for _, k := range cfg.Previous {
		switch {
		case !slices.ContainsFunc(keys, func(o Key) bool { return o.ID == k.ID }):
			bad("previous secret of key %d, which is not a key", k.ID)
		case len(k.Secret) < MinKeyLen || len(k.Secret) > MaxKeyLen:
			bad("previous secret of key %d is %d bytes, want %d..%d", k.ID, len(k.Secret), MinKeyLen, MaxKeyLen)
		}
		prev = append(prev, Key{ID: k.ID, Secret: slices.Clone(k.Secret)})
	}
	cfg.Previous = prev
	if !slices.ContainsFunc(keys, func(k Key) bool { return k.ID == cfg.ActiveKey }) {
		bad("active key %d is not among the keys", cfg.ActiveKey)
	}
	if w := cfg.Window; w != 0 && (w < MinWindow || w > MaxWindow || w%time.Second != 0) {
		bad("window %v is not whole seconds in %v..%v", w, MinWindow, MaxWindow)
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("auth: %w", errors.Join(errs...))
	}
	return cfg, nil
}

// Reconfigure replaces keys, mode and window in place. The send sequence
// and the senders' high-water marks are kept, so a key rotation neither
// reopens a replay nor makes peers refuse our next advert.
func (a *Authenticator) Reconfigure(cfg Config) error {
	cfg, err := normalize(cfg)
	if err != nil {
		return err
	}
	keys := make([]keyState, len(cfg.Keys))
	for i, k := range cfg.Keys {
		keys[i] = keyState{id: k.ID, secret: k.Secret}
		// An unchanged key keeps its prepared HMAC.
		if old := a.key(k.ID); old != nil && subtle.ConstantTimeCompare(old.secret, k.Secret) == 1 {
			keys[i].mac = old.mac
		} else {
			keys[i].mac = hmac.New(sha256.New, k.Secret)
		}
		for _, p := range cfg.Previous {
			if p.ID == k.ID {
				keys[i].prev = hmac.New(sha256.New, p.Secret)
			}
		}
	}
	a.cfg, a.keys = cfg, keys
	a.active = a.key(cfg.ActiveKey)
	return nil
}

func (a *Authenticator) key(id uint8) *keyState {
	for i := range a.keys {
		if a.keys[i].id == id {
			return &a.keys[i]
		}
	}
	return nil
}

// Mode is the mode in force.
func (a *Authenticator) Mode() Mode { return a.cfg.Mode }

// ActiveKey is the key id that signs.
func (a *Authenticator) ActiveKey() uint8 { return a.cfg.ActiveKey }

// KeyIDs lists the ids that verify, in configuration order.
func (a *Authenticator) KeyIDs() []uint8 {
	ids := make([]uint8, len(a.keys))
	for i, k := range a.keys {
		ids[i] = k.id
	}
	return ids
}

// Signs reports whether adverts get a trailer (every mode but receive-only).
func (a *Authenticator) Signs() bool { return a.cfg.Mode != ModeReceiveOnly }

// AcceptsUnsigned reports whether adverts without a trailer are accepted.
func (a *Authenticator) AcceptsUnsigned() bool { return a.cfg.Mode != ModeEnforce }

// Window is the freshness window; w is used when the configuration left it zero.
func (a *Authenticator) window(advertInterval time.Duration) time.Duration {
	if a.cfg.Window != 0 {
		return a.cfg.Window
	}
	return DefaultWindow(advertInterval)
}

// Window is the freshness window in force for the given advert interval.
func (a *Authenticator) Window(advertInterval time.Duration) time.Duration {
	return a.window(advertInterval)
}

// nextSeq is max(clock, last + 1); a sender whose sequence ran more than a
// window ahead of its clock (a clock stepped back) restarts from the clock,
// which receivers accept once their old mark has aged out of the window.
func (a *Authenticator) nextSeq(now time.Time, window time.Duration) Seq {
	clk := SeqAt(now)
	switch {
	case clk.After(a.sendSeq):
		a.sendSeq = clk
	case int64(int32(a.sendSeq.Sec()-clk.Sec())) > int64(window/time.Second):
		a.sendSeq = clk
	default:
		a.sendSeq++
	}
	return a.sendSeq
}

// Sign appends a signed trailer to msg, a complete VRRP message sent from
// src, and returns the extended slice. The checksum field of msg is not
// covered (it may be computed before or after). It appends nothing in
// receive-only mode or for a message shorter than a VRRP header.
func (a *Authenticator) Sign(now time.Time, src netip.Addr, advertInterval time.Duration, msg []byte) []byte {
	if !a.Signs() || len(msg) < minMessageLen || a.active == nil {
		return msg
	}
	t := Trailer{Type: TypeHMACSHA256, KeyID: a.active.id, Seq: a.nextSeq(now, a.window(advertInterval))}
	n := len(msg)
	msg = t.Append(msg)
	mac := a.active.mac
	if a.cfg.SignPrevious && a.active.prev != nil {
		mac = a.active.prev
	}
	a.computeMAC(mac, src, msg[:n], msg[n:n+headLen])
	copy(msg[n+headLen:], a.sum[:MACLen])
	return msg
}

// computeMAC leaves HMAC(key, pseudo ‖ msg with zero checksum ‖ head ‖ 16 zeros) in a.sum.
func (a *Authenticator) computeMAC(h hash.Hash, src netip.Addr, msg, head []byte) {
	a.pseudo = pseudoHeader(src, msg[0]>>4, msg[1])
	h.Reset()
	h.Write(a.pseudo[:])
	h.Write(msg[:checksumOff])
	h.Write(zeros[:2])
	h.Write(msg[checksumOff+2:])
	h.Write(head)
	h.Write(zeros[:])
	h.Sum(a.sum[:0])
}

// pseudoHeader is [4 or 6, version, VRID, 0] followed by the source
// address, zero-padded to 16 bytes. Binding the family, version and VRID
// stops splicing between routers that share a key.
func pseudoHeader(src netip.Addr, version, vrid uint8) [pseudoLen]byte {
	var p [pseudoLen]byte
	p[0], p[1], p[2] = 4, version, vrid
	src = src.Unmap()
	if src.Is4() {
		v4 := src.As4()
		copy(p[4:], v4[:])
	} else {
		p[0] = 6
		v6 := src.As16()
		copy(p[4:], v6[:])
	}
	return p
}

// Verify checks the trailer of an advert from src: msg is the VRRP message
// without the trailer, tr the TrailerLen bytes after it. The checks run in
// keepalived's order, cheapest first: scheme, freshness (before the MAC, so
// a flood of stale packets costs no HMAC), key id, MAC (constant time), and
// last the sender's high-water mark, which moves only on a verified advert.
// The returned Trailer is what the packet said (zero when tr is not
// TrailerLen bytes).
func (a *Authenticator) Verify(now time.Time, src netip.Addr, advertInterval time.Duration, msg, tr []byte) (Result, Trailer) {
	t, err := ParseTrailer(tr)
	if err != nil || len(msg) < minMessageLen {
		return Malformed, t
	}
	if t.Type != TypeHMACSHA256 || t.Reserved != 0 {
		return Malformed, t
	}
	window := a.window(advertInterval)
	if !fresh(now, t.Seq.Sec(), window) {
		return Stale, t
	}
	k := a.key(t.KeyID)
	if k == nil {
		return UnknownKey, t
	}
	copy(a.want[:], t.MAC[:])
	if !a.macMatches(k.mac, src, msg, tr[:headLen]) && (k.prev == nil || !a.macMatches(k.prev, src, msg, tr[:headLen])) {
		return BadMAC, t
	}
	src = src.Unmap().WithZone("")
	if mark, ok := a.marks[src]; ok {
		// A mark outside the window orders nothing the window would let
		// in; dropping it lets a sender restarted after a clock step back in.
		if fresh(now, mark.Sec(), window) && !t.Seq.After(mark) {
			return Replay, t
		}
	}
	a.marks[src] = t.Seq
	return OK, t
}

func (a *Authenticator) macMatches(h hash.Hash, src netip.Addr, msg, head []byte) bool {
	a.computeMAC(h, src, msg, head)
	return subtle.ConstantTimeCompare(a.sum[:MACLen], a.want[:]) == 1
}

// fresh reports whether |now − sec| ≤ window, in 32-bit serial arithmetic
// on whole seconds as the trailer carries them.
func fresh(now time.Time, sec uint32, window time.Duration) bool {
	delta := int64(int32(uint32(now.Unix()) - sec))
	w := int64(window / time.Second)
	return delta <= w && delta >= -w
}

// Forget drops the high-water marks of senders not in keep (peers removed
// from the configuration), so the table stays bounded by the peer list.
func (a *Authenticator) Forget(keep func(netip.Addr) bool) {
	for src := range a.marks {
		if !keep(src) {
			delete(a.marks, src)
		}
	}
}

// Mark is the high-water mark of src, if one is held.
func (a *Authenticator) Mark(src netip.Addr) (Seq, bool) {
	s, ok := a.marks[src.Unmap().WithZone("")]
	return s, ok
}
