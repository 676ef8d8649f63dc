package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Unicast VRRP, as keepalived's unicast_peer does it (no RFC; see
// draft-abinabraham-vrrp-unicast): for networks that carry no multicast,
// each advert is sent once to every peer instead of once to the group.
// The Router encodes one advert (and signs it once) for the group; the
// caller sends a copy to each peer, readdressed with AppendReaddressed,
// whose IPv4 pseudo-header checksum names the real destination. The
// auth_hmac trailer covers neither the IP header nor the checksum, so
// every copy carries the same sequence number and HMAC (keepalived 2.4.3
// signs once per advert too).

// AppendReaddressed appends to buf a copy of data, an advert encoded for
// the VRRP group address from src with checksum form form, re-addressed to
// the unicast destination to: an IPv4 pseudo-header checksum is computed
// again for to, over the message without an authentication trailer; the
// message-only form names no address and is copied as it is; IPv6 gets the
// checksum of its pseudo-header for to over the whole payload, as the
// kernel computes it on send anyway. A trailer is copied unchanged.
func AppendReaddressed(buf, data []byte, form ChecksumForm, src, to netip.Addr) ([]byte, error) {
	src, to = src.Unmap(), to.Unmap()
	if !src.IsValid() || !to.IsValid() || src.Is4() != to.Is4() {
		return buf, fmt.Errorf("vrrp: readdress: source %v and destination %v must be set and of one family", src, to)
	}
	start := len(buf)
	buf = append(buf, data...)
	if !src.Is4() {
		if len(data) < HeaderLen {
			return buf[:start], errors.New("vrrp: readdress: shorter than a VRRP header")
		}
		setIPv6Checksum(buf[start:], src, to)
		return buf, nil
	}
	if form != ChecksumPseudoHeader {
		return buf, nil
	}
	if len(data) < HeaderLen {
		return buf[:start], errors.New("vrrp: readdress: shorter than a VRRP header")
	}
	n := HeaderLen + int(data[3])*4
	if n > len(data) {
		return buf[:start], fmt.Errorf("vrrp: readdress: %d bytes, the address count needs %d", len(data), n)
	}
	msg := buf[start : start+n]
	binary.BigEndian.PutUint16(msg[6:], expectedChecksum(msg, pseudoHeaderSum(src, to, n)))
	return buf, nil
}

// checkDelivery applies the receive checks that depend on how the advert
// was delivered: its destination and TTL / hop limit. A multicast router
// requires TTL 255 (RFC 9568 §7.1) whatever the destination. A unicast
// router takes adverts addressed to its own Source with a TTL of at least
// MinTTL (255 unless the plan lowers it for peers behind routers), and
// multicast ones with TTL 255 only (a peer still on multicast during a
// roll-out); an advert for any other address is not for this router.
func (r *Router) checkDelivery(src netip.Addr, p Packet) []Action {
	if !r.cfg.Unicast {
		if p.TTL != RequiredTTL {
			return r.drop(DropTTL, src, fmt.Errorf("vrrp: TTL / hop limit %d, want %d", p.TTL, RequiredTTL))
		}
		return nil
	}
	dst := p.Dst.Unmap().WithZone("")
	switch {
	case dst == r.cfg.Source:
		if min := r.minTTL(); p.TTL < min || p.TTL > RequiredTTL {
			return r.drop(DropTTL, src, fmt.Errorf("vrrp: unicast advert with TTL / hop limit %d, below the minimum %d", p.TTL, min))
		}
	case dst.IsMulticast():
		if p.TTL != RequiredTTL {
			return r.drop(DropTTL, src, fmt.Errorf("vrrp: multicast advert with TTL / hop limit %d, want %d", p.TTL, RequiredTTL))
		}
	default:
		return r.drop(DropDestination, src, fmt.Errorf("vrrp: advert addressed to %v, not to this router's unicast source %v", p.Dst, r.cfg.Source))
	}
	return nil
}

// minTTL is the lowest TTL / hop limit a unicast advert may arrive with.
func (r *Router) minTTL() int {
	if r.cfg.MinTTL == 0 {
		return RequiredTTL
	}
	return int(r.cfg.MinTTL)
}

// checkUnicast adds the unicast rules to normalize: an IPv6 source may be
// a global address (peers behind routers cannot reach a link-local one),
// peers are the destinations and must be unicast addresses, and a lower
// minimum TTL makes sense only where adverts are routed.
func checkUnicast(cfg Config, bad func(string, ...any)) {
	if !cfg.Unicast {
		if cfg.MinTTL != 0 && cfg.MinTTL != RequiredTTL {
			bad("min TTL %d applies to unicast only (multicast adverts always need %d)", cfg.MinTTL, RequiredTTL)
		}
		return
	}
	for _, a := range cfg.Peers {
		if a.IsMulticast() || a.IsLoopback() {
			bad("unicast peer %v is not a unicast address", a)
		}
	}
}
