// Package announce sends gratuitous ARP and unsolicited neighbour advertisements.
package announce

import (
	"errors"
	"net/netip"
)

// Announcer sends announcements on one interface.
type Announcer struct{}

// Open prepares announcements on ifname.
func Open(ifname string) (*Announcer, error) { return nil, errors.New("announce: not implemented yet") }

// Announce sends one packet announcing vip.
func (a *Announcer) Announce(vip netip.Addr) error {
	return errors.New("announce: not implemented yet")
}

// Close releases the sockets.
func (a *Announcer) Close() error { return nil }
