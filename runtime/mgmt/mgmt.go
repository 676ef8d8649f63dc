// Package mgmt holds the node side of the management protocol
// (docs/management-protocol.md) around its pure engine
// (runtime/mgmt/engine): the engine's configuration from a plan, key
// files, the status and table file documents, metrics, and the UDP socket.
// The agent's node (runtime/node) steps the engine in its event loop; the
// agent's executor (runtime/agent) owns the socket and the table writer.
package mgmt

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/mgmt/wire"
	"github.com/mwgc/mwgc/runtime/plan"
)

// EngineConfig builds the engine's configuration from a plan with a
// management section and the keys read from its key file, and checks it
// as the engine will.
func EngineConfig(p *plan.Plan, keys [][]byte) (engine.Config, error) {
	m := p.Management
	cfg := engine.Config{
		Cluster: p.Cluster, Node: p.Node, Address: m.Address, Broadcast: m.Broadcast,
		Interval: m.DiscoveryInterval.D(), DeadAfter: m.DeadAfter, Keys: keys, Version: uint8(m.Version),
		UnicastDiscovery: m.Discovery == plan.DiscoveryUnicast,
	}
	if d, ok := strings.CutPrefix(p.Digest, "sha256:"); ok {
		if b, err := hex.DecodeString(d); err == nil && len(b) == wire.DigestLen {
			copy(cfg.Digest[:], b)
		}
	}
	for _, in := range p.Interfaces {
		for _, a := range in.Addresses {
			if len(cfg.Addresses) < wire.MaxAddresses {
				cfg.Addresses = append(cfg.Addresses, a)
			}
		}
	}
	for _, mem := range m.Members {
		cfg.Members = append(cfg.Members, engine.Member{Name: mem.Name, Address: mem.Address, Director: mem.Director})
	}
	// Validate as the engine will, so a reload can refuse before touching anything.
	if _, err := engine.New(cfg, 1, nil); err != nil {
		return cfg, fmt.Errorf("mgmt: %w", err)
	}
	return cfg, nil
}

// MaxKeyFileSize bounds what is read of a key file.
const MaxKeyFileSize = 64 << 10

// KeysFromFile checks a key file's mode (a regular file that others can
// neither read nor change) and parses its keys. It returns a fingerprint
// of the keys for logs and change detection, never the keys themselves.
func KeysFromFile(data []byte, mode fs.FileMode) ([][]byte, string, error) {
	if !mode.IsRegular() {
		return nil, "", errors.New("not a regular file")
	}
	if perm := mode.Perm(); perm&0o022 != 0 || perm&0o004 != 0 {
		return nil, "", fmt.Errorf("mode %04o lets others read or change the key; chmod 600 (or 640)", perm)
	}
	keys, err := wire.ParseKeyFile(data)
	if err != nil {
		return nil, "", err
	}
	// 8 bytes of each key's SHA-256.
	h := fmt.Sprintf("%d key(s)", len(keys))
	for _, k := range keys {
		h += fmt.Sprintf(" %x", sha256Short(k))
	}
	return keys, h, nil
}

// Status is the JSON-able state for the agent's /status.
type Status struct {
	Cluster   string     `json:"cluster"`
	Node      string     `json:"node"`
	Digest    string     `json:"digest"` // of the plan in use, as sent in answers
	Active    bool       `json:"active"`
	Interface string     `json:"interface"`
	Address   netip.Addr `json:"address"`
	Broadcast netip.Addr `json:"broadcast"`
	// Discovery is "unicast" when discovery goes to each member's address
	// (empty: broadcast).
	Discovery     string        `json:"discovery,omitempty"`
	Port          int           `json:"port"`
	Interval      string        `json:"interval"`
	DeadAfter     int           `json:"deadAfter"`
	Authenticated bool          `json:"authenticated"`
	BootID        string        `json:"bootId"`
	Answering     []string      `json:"answering"` // directors this node answers
	Counts        NodeCounts    `json:"counts"`
	Nodes         []engine.Node `json:"nodes"`
	Stats         StatusStats   `json:"stats"`
}

// NodeCounts summarises the table.
type NodeCounts struct {
	Up     int `json:"up"`
	Down   int `json:"down"`
	Unseen int `json:"unseen"`
}

// StatusStats are the counters of /status.
type StatusStats struct {
	DiscoveriesSent     uint64            `json:"discoveriesSent"`
	AnswersSent         uint64            `json:"answersSent"`
	DiscoveriesReceived uint64            `json:"discoveriesReceived"`
	AnswersReceived     uint64            `json:"answersReceived"`
	Drops               map[string]uint64 `json:"drops"`
	SendErrors          uint64            `json:"sendErrors"`
}

// NewStatus is the status of a running engine configured from m.
func NewStatus(eng *engine.Engine, cluster, node, digest string, m *plan.Management, sendErrors uint64) Status {
	st := eng.Stats()
	out := Status{
		Cluster: cluster, Node: node, Digest: digest, Active: eng.Active(),
		Interface: m.Interface, Address: m.Address, Broadcast: m.Broadcast, Discovery: m.Discovery, Port: m.Port,
		Interval: m.DiscoveryInterval.String(), DeadAfter: m.DeadAfter,
		Authenticated: m.KeyFile != "", BootID: fmt.Sprintf("%016x", eng.BootID()),
		Answering: eng.Directors(), Nodes: eng.Table(),
		Stats: StatusStats{
			DiscoveriesSent: st.DiscoveriesSent, AnswersSent: st.AnswersSent,
			DiscoveriesReceived: st.DiscoveriesReceived, AnswersReceived: st.AnswersReceived,
			Drops: map[string]uint64{}, SendErrors: sendErrors,
		},
	}
	if out.Answering == nil {
		out.Answering = []string{}
	}
	for r, n := range st.Drops {
		out.Stats.Drops[string(r)] = n
	}
	out.Counts = countNodes(out.Nodes)
	return out
}

func countNodes(nodes []engine.Node) NodeCounts {
	var c NodeCounts
	for _, n := range nodes {
		switch n.Status {
		case engine.StatusUp:
			c.Up++
		case engine.StatusDown:
			c.Down++
		default:
			c.Unseen++
		}
	}
	return c
}

// ReadLoad returns the load answers report: the 1-minute load average
// per CPU, in per mille.
func ReadLoad() (uint16, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	l, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, false
	}
	return uint16(min(l/float64(runtime.NumCPU())*1000, 65535)), true
}
