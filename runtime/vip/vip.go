// Package vip adds and removes virtual IP addresses on an interface with
// netlink. It only ever touches the exact address (and prefix length) it is
// asked about; every call is idempotent. Calls act in the network namespace
// of the calling thread.
package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Add adds p (address and prefix length, e.g. 192.0.2.100/24) to ifname if it
// is not there yet. IPv6 addresses are added without duplicate address
// detection (IFA_F_NODAD), so they are usable at once. For IPv4 it tries to
// enable promote_secondaries on the interface (see Remove for why, and for
// what happens when /proc/sys is read-only).
func Add(ifname string, p netip.Prefix) error {
	link, err := checkArgs(ifname, p)
	if err != nil {
		return err
	}
	if has, err := has(link, p); err != nil || has {
		return err
	}
	if p.Addr().Is4() {
		// Best effort: a read-only /proc/sys (systemd's
		// ProtectKernelTunables) must not stop a takeover; Remove copes.
		_ = enablePromoteSecondaries(ifname)
	}
	addr := toNetlink(p)
	if p.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	err = netlink.AddrAdd(link, addr)
	if errors.Is(err, unix.EEXIST) {
		// Raced with someone else adding it, or (IPv6) the address exists
		// with another prefix length: only the first is success.
		if ok, herr := has(link, p); herr == nil && ok {
			return nil
		}
		return fmt.Errorf("vip: add %v to %s: the address is already there with another prefix length", p, ifname)
	}
	if err != nil {
		return fmt.Errorf("vip: add %v to %s: %w", p, ifname, err)
	}
	return nil
}

// Remove removes p from ifname; an address that is absent (or present only
// with another prefix length, which is then left alone) is not an error.
//
// IPv4: when the VIP is the primary address of its subnet (it was there
// before the node's own address, e.g. left over from a crash), the kernel
// deletes the subnet's secondary addresses with it unless
// promote_secondaries is on. Remove turns it on; if it cannot (read-only
// /proc/sys), it puts back every address the deletion took along.
func Remove(ifname string, p netip.Prefix) error {
	link, err := checkArgs(ifname, p)
	if err != nil {
		return err
	}
	if has, err := has(link, p); err != nil || !has {
		return err
	}
	var before []netlink.Addr
	if p.Addr().Is4() && enablePromoteSecondaries(ifname) != nil {
		if before, err = netlink.AddrList(link, netlink.FAMILY_V4); err != nil {
			return fmt.Errorf("vip: remove %v from %s: %w", p, ifname, err)
		}
	}
	err = netlink.AddrDel(link, toNetlink(p))
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("vip: remove %v from %s: %w", p, ifname, err)
	}
	if before != nil {
		return restoreTakenAlong(link, p, before)
	}
	return nil
}

// restoreTakenAlong re-adds the addresses in before (other than removed)
// that are gone now, with their label, scope and broadcast address.
func restoreTakenAlong(link netlink.Link, removed netip.Prefix, before []netlink.Addr) error {
	after, err := list(link, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range before {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		pfx := netip.PrefixFrom(ip.Unmap(), ones)
		if pfx == removed || slices.Contains(after, pfx) {
			continue
		}
		re := &netlink.Addr{IPNet: a.IPNet, Label: a.Label, Scope: a.Scope, Broadcast: a.Broadcast,
			Flags: a.Flags &^ unix.IFA_F_SECONDARY}
		if err := netlink.AddrAdd(link, re); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("vip: removing %v took %v along and it could not be put back: %w", removed, pfx, err))
		}
	}
	return errors.Join(errs...)
}

// Has reports whether ifname carries p with exactly that prefix length.
func Has(ifname string, p netip.Prefix) (bool, error) {
	link, err := checkArgs(ifname, p)
	if err != nil {
		return false, err
	}
	return has(link, p)
}

// List returns every address on ifname (of both families) as prefixes,
// IPv6 link-local addresses without zone.
func List(ifname string) ([]netip.Prefix, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vip: interface %q: %w", ifname, err)
	}
	return list(link, netlink.FAMILY_ALL)
}

// EnsureLinkLocal adds the IPv6 link-local address a (as a /64, without
// DAD) to ifname if it is not there yet, for VRRP over IPv6, which sends
// from a link-local address.
func EnsureLinkLocal(ifname string, a netip.Addr) error {
	a = a.WithZone("")
	if !a.Is6() || !a.IsLinkLocalUnicast() {
		return fmt.Errorf("vip: %v is not an IPv6 link-local address", a)
	}
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("vip: interface %q: %w", ifname, err)
	}
	addrs, err := list(link, netlink.FAMILY_V6)
	if err != nil {
		return err
	}
	for _, p := range addrs {
		if p.Addr() == a {
			return nil
		}
	}
	return Add(ifname, netip.PrefixFrom(a, 64))
}

func checkArgs(ifname string, p netip.Prefix) (netlink.Link, error) {
	if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
		return nil, fmt.Errorf("vip: invalid address %v", p)
	}
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vip: interface %q: %w", ifname, err)
	}
	return link, nil
}

func has(link netlink.Link, p netip.Prefix) (bool, error) {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := list(link, family)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if a == p {
			return true, nil
		}
	}
	return false, nil
}

func list(link netlink.Link, family int) ([]netip.Prefix, error) {
	addrs, err := netlink.AddrList(link, family)
	if err != nil {
		return nil, fmt.Errorf("vip: list addresses of %s: %w", link.Attrs().Name, err)
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.IPNet == nil {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

func toNetlink(p netip.Prefix) *netlink.Addr {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}}
}

// enablePromoteSecondaries is a variable so tests can play a read-only /proc/sys.
var enablePromoteSecondaries = promoteSecondaries

// promoteSecondaries sets net.ipv4.conf.IFNAME.promote_secondaries=1 unless
// it already is (the read avoids needless writes on every Add).
func promoteSecondaries(ifname string) error {
	path := filepath.Join("/proc/sys/net/ipv4/conf", ifname, "promote_secondaries")
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable promote_secondaries: %w", err)
	}
	return nil
}
