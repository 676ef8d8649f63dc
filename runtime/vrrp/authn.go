package vrrp

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/mwgc/mwgc/runtime/vrrp/auth"
)

// Authentication glue of the Router (Config.Auth): keepalived's auth_hmac
// trailer, signed on send and checked on receive after the cheap checks
// (parse, VRID, own source, peer list) and before the election sees the
// advert. The trailer's own rules are in runtime/vrrp/auth.

var authDrops = [auth.NumResults]DropReason{
	auth.Missing:    DropAuthMissing,
	auth.Malformed:  DropAuthMalformed,
	auth.Stale:      DropAuthStale,
	auth.UnknownKey: DropAuthUnknownKey,
	auth.BadMAC:     DropAuthBadMAC,
	auth.Replay:     DropAuthReplay,
}

// setAuth installs, changes or removes the authenticator. A change keeps
// the send sequence and the peers' high-water marks. A key whose secret
// changed under the same id (a key file changed in place) keeps its
// previous secret: it still signs with it for PolicyGrace and verifies it
// for twice as long, so that every node has read the new file before
// anyone depends on it.
func (r *Router) setAuth(now time.Time, old, cfg *auth.Config) {
	r.prevKeys = slices.DeleteFunc(r.prevKeys, func(k auth.Key) bool { return cfg == nil || !hasKeyID(cfg.Keys, k.ID) })
	if old != nil && cfg != nil && r.planned.PolicyGrace > 0 {
		for _, k := range cfg.Keys {
			i := slices.IndexFunc(old.Keys, func(o auth.Key) bool { return o.ID == k.ID })
			if i < 0 || bytes.Equal(old.Keys[i].Secret, k.Secret) {
				continue
			}
			r.prevKeys = slices.DeleteFunc(r.prevKeys, func(p auth.Key) bool { return p.ID == k.ID })
			r.prevKeys = append(r.prevKeys, auth.Key{ID: k.ID, Secret: old.Keys[i].Secret})
			r.signPrevUntil = now.Add(r.planned.PolicyGrace)
			r.prevUntil = now.Add(2 * r.planned.PolicyGrace)
		}
	}
	r.installAuth(now, cfg)
}

func hasKeyID(keys []auth.Key, id uint8) bool {
	return slices.ContainsFunc(keys, func(k auth.Key) bool { return k.ID == id })
}

// installAuth gives the authenticator cfg with the previous secrets still
// in their grace.
func (r *Router) installAuth(now time.Time, cfg *auth.Config) {
	if cfg != nil && len(r.prevKeys) > 0 {
		if !now.Before(r.prevUntil) {
			r.prevKeys = nil
		} else {
			c := *cfg
			c.Previous = r.prevKeys
			c.SignPrevious = now.Before(r.signPrevUntil) && hasKeyID(r.prevKeys, c.ActiveKey)
			cfg = &c
		}
	}
	switch {
	case cfg == nil:
		r.auth = nil
	case r.auth == nil:
		a, err := auth.New(*cfg)
		if err != nil {
			panic("vrrp: a checked auth config was refused: " + err.Error())
		}
		r.auth = a
	default:
		if err := r.auth.Reconfigure(*cfg); err != nil {
			panic("vrrp: a checked auth config was refused: " + err.Error())
		}
	}
	if r.auth != nil {
		r.auth.Forget(func(a netip.Addr) bool { return r.peers[a] != nil })
	}
}

// prevKeysDeadline is when the previous secrets' grace changes next.
func (r *Router) prevKeysDeadline() time.Time {
	switch {
	case len(r.prevKeys) == 0:
		return time.Time{}
	case r.signPrevUntil.After(r.lastKeyStep):
		return r.signPrevUntil
	}
	return r.prevUntil
}

// stepPrevKeys ends the previous secrets' grace when it is due.
func (r *Router) stepPrevKeys(now time.Time) {
	if d := r.prevKeysDeadline(); d.IsZero() || now.Before(d) {
		return
	}
	r.lastKeyStep = now
	r.installAuth(now, r.planned.Auth)
}

// splitTrailer separates a trailer from the message. As in keepalived, a
// trailer is recognised only when authentication is configured and the
// payload is exactly the message plus TrailerLen bytes; otherwise the
// length check refuses the packet.
func (r *Router) splitTrailer(b []byte) (msg, trailer []byte) {
	if r.auth == nil || len(b) < HeaderLen {
		return b, nil
	}
	n := HeaderLen + int(b[3])*addrLen(r.is4)
	if len(b) != n+auth.TrailerLen {
		return b, nil
	}
	return b[:n], b[n:]
}

// authenticate checks the trailer of an advert from the listed peer ps;
// nil means accepted.
func (r *Router) authenticate(now time.Time, src netip.Addr, ps *peerState, msg, trailer []byte) []Action {
	if r.auth == nil {
		return nil
	}
	if trailer == nil {
		if r.auth.AcceptsUnsigned() {
			ps.stats.Unsigned++
			r.stats.Auth.Unsigned++
			return nil
		}
		return r.authFailed(now, src, ps, auth.Missing, auth.Trailer{})
	}
	res, tr := r.auth.Verify(now, src, r.cfg.AdvertInterval, msg, trailer)
	if res != auth.OK {
		return r.authFailed(now, src, ps, res, tr)
	}
	ps.stats.Signed++
	ps.stats.LastKeyID = tr.KeyID
	r.stats.Auth.Verified++
	return nil
}

func (r *Router) authFailed(now time.Time, src netip.Addr, ps *peerState, res auth.Result, tr auth.Trailer) []Action {
	ps.stats.AuthFailures++
	ps.stats.LastAuthFailure = now
	e := &authError{src: src, res: res, tr: tr, now: now.Unix(), window: r.auth.Window(r.cfg.AdvertInterval)}
	switch res {
	case auth.UnknownKey:
		e.keys = r.auth.KeyIDs()
	case auth.Replay:
		e.mark, _ = r.auth.Mark(src)
	}
	return r.drop(authDrops[res], src, e)
}

// authError explains an authentication failure. It is formatted only when
// someone reads it: under a flood of forgeries most are only counted.
type authError struct {
	src    netip.Addr
	res    auth.Result
	tr     auth.Trailer
	now    int64
	window time.Duration
	keys   []uint8
	mark   auth.Seq
}

func (e *authError) Error() string {
	var detail string
	switch e.res {
	case auth.Missing:
		detail = "no authentication trailer (mode enforce)"
	case auth.Stale:
		detail = fmt.Sprintf("timestamp %d is more than %v from our clock %d", e.tr.Seq.Sec(), e.window, e.now)
	case auth.UnknownKey:
		detail = fmt.Sprintf("key id %d is not configured (have %v)", e.tr.KeyID, e.keys)
	case auth.Malformed:
		detail = fmt.Sprintf("trailer type %d reserved %#x", e.tr.Type, e.tr.Reserved)
	case auth.BadMAC:
		detail = fmt.Sprintf("HMAC with key id %d does not match", e.tr.KeyID)
	case auth.Replay:
		detail = fmt.Sprintf("sequence %#x is not above the last accepted %#x", uint64(e.tr.Seq), uint64(e.mark))
	}
	return fmt.Sprintf("vrrp: advert in the name of peer %v failed authentication: %s", e.src, detail)
}

// sign appends the trailer to our advert; IPv6 then gets its checksum over
// the whole payload (the kernel recomputes it anyway).
func (r *Router) sign(now time.Time, data []byte, dst netip.Addr) []byte {
	if r.auth == nil || !r.auth.Signs() {
		return data
	}
	data = r.auth.Sign(now, r.cfg.Source, r.cfg.AdvertInterval, data)
	if !r.is4 {
		setIPv6Checksum(data, r.cfg.Source, dst)
	}
	r.stats.Auth.Signed++
	return data
}
