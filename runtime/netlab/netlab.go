// Package netlab builds throwaway network labs out of Linux network
// namespaces for tests. It is test support, importable from any package's tests.
package netlab

import (
	"os/exec"
	"testing"
)

// Lab is a set of node namespaces joined by a bridge, plus an observer.
type Lab struct{}

// Capture is a running tcpdump in the observer namespace.
type Capture struct{}

// New builds a lab with the given nodes.
func New(t testing.TB, nodes ...string) *Lab { t.Fatal("netlab: not implemented yet"); return nil }

// NS returns the namespace name of node.
func (l *Lab) NS(node string) string { return "" }

// Ifname returns the interface name inside the node namespace.
func (l *Lab) Ifname(node string) string { return "eth0" }

// AddAddr adds prefix (e.g. "192.0.2.11/24") to the node's interface.
func (l *Lab) AddAddr(node string, prefix string) {}

// Command returns a command that runs inside the node namespace.
func (l *Lab) Command(node string, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.NS(node), name}, args...)...)
}

// LinkDown sets the node's interface down.
func (l *Lab) LinkDown(node string) {}

// LinkUp sets the node's interface up.
func (l *Lab) LinkUp(node string) {}

// Capture starts tcpdump in the observer namespace.
func (l *Lab) Capture(filter string) *Capture { return &Capture{} }

// Stop stops the capture and returns the pcap path.
func (c *Capture) Stop() (pcapPath string) { return "" }
