// Package vrrpnet is the Linux socket driver for VRRPv3: a raw IP protocol 112
// socket on one interface for one address family.
package vrrpnet

import (
	"errors"
	"net/netip"
)

// Conn sends and receives VRRP messages (the IP payload) on one interface.
type Conn struct{}

// Listen opens a raw protocol-112 socket on ifname for IPv4 or IPv6.
func Listen(ifname string, ipv6 bool, source netip.Addr) (*Conn, error) {
	return nil, errors.New("vrrpnet: not implemented yet")
}

// ReadPacket reads one VRRP message into buf.
func (c *Conn) ReadPacket(buf []byte) (n int, src, dst netip.Addr, ttl int, err error) {
	return 0, netip.Addr{}, netip.Addr{}, 0, errors.New("vrrpnet: not implemented yet")
}

// WritePacket sends msg to the VRRP group.
func (c *Conn) WritePacket(msg []byte) error { return errors.New("vrrpnet: not implemented yet") }

// Close closes the socket.
func (c *Conn) Close() error { return nil }
