// Package vip adds and removes virtual IP addresses with netlink.
package vip

import (
	"errors"
	"net/netip"
)

var errTODO = errors.New("vip: not implemented yet")

// Add adds p to ifname; idempotent.
func Add(ifname string, p netip.Prefix) error { return errTODO }

// Remove removes p from ifname; absent is not an error.
func Remove(ifname string, p netip.Prefix) error { return errTODO }

// Has reports whether ifname carries p.
func Has(ifname string, p netip.Prefix) (bool, error) { return false, errTODO }

// EnsureLinkLocal adds the link-local address a to ifname if missing.
func EnsureLinkLocal(ifname string, a netip.Addr) error { return errTODO }
