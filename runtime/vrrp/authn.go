package vrrp

import (
	"fmt"
	"net/netip"
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
// the send sequence and the peers' high-water marks.
func (r *Router) setAuth(cfg *auth.Config) {
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
	var detail string
	switch res {
	case auth.Missing:
		detail = "no authentication trailer (mode enforce)"
	case auth.Stale:
		detail = fmt.Sprintf("timestamp %d is more than %v from our clock %d", tr.Seq.Sec(), r.auth.Window(r.cfg.AdvertInterval), now.Unix())
	case auth.UnknownKey:
		detail = fmt.Sprintf("key id %d is not configured (have %v)", tr.KeyID, r.auth.KeyIDs())
	case auth.Malformed:
		detail = fmt.Sprintf("trailer type %d reserved %#x", tr.Type, tr.Reserved)
	case auth.BadMAC:
		detail = fmt.Sprintf("HMAC with key id %d does not match", tr.KeyID)
	case auth.Replay:
		mark, _ := r.auth.Mark(src)
		detail = fmt.Sprintf("sequence %#x is not above the last accepted %#x", uint64(tr.Seq), uint64(mark))
	}
	return r.drop(authDrops[res], src, fmt.Errorf("vrrp: advert in the name of peer %v failed authentication: %s", src, detail))
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
