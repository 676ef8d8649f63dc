// Package mgmt runs the management protocol for one node
// (docs/management-protocol.md): the pure engine of runtime/mgmt/engine
// driven by a UDP socket, a timer, the plan, Prometheus metrics and the
// table file.
package mgmt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/mgmt/engine"
	"github.com/mwgc/mwgc/runtime/mgmt/wire"
	"github.com/mwgc/mwgc/runtime/plan"
)

// tableRefresh is how often the table file is rewritten when only
// last-seen times and loads changed.
const tableRefresh = 10 * time.Second

// Service is the management protocol of one node.
type Service struct {
	log *slog.Logger

	mu        sync.Mutex
	eng       *engine.Engine
	conn      *conn
	mgmt      plan.Management
	cluster   string
	node      string
	digest    string
	cfg       engine.Config
	keyDigest string // of the keys in use, to notice a changed key file
	keyErr    string // last key file error logged
	deadline  time.Time
	loadRead  time.Time
	tableAt   time.Time // last table file write
	lastWarn  map[engine.DropReason]time.Time
	closed    bool
	report    reportTarget // what report.go checks

	counters counters
	table    *tableWriter
	kick     chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup
	now      func() time.Time
}

type counters struct {
	sendErrors, tableWrites, reloadsOK, reloadsRefused, keyReloads, keyRefused uint64
}

// Start runs the management protocol for p (which must have a management
// section): it opens the socket, starts answering directors, and registers
// its metrics on reg (nil: no metrics). The node starts as not Active.
func Start(p *plan.Plan, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if p == nil || p.Management == nil {
		return nil, errors.New("mgmt: the plan has no management section")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, keyDigest, err := engineConfig(p)
	if err != nil {
		return nil, err
	}
	var seed [16]byte
	_, _ = rand.Read(seed[:])
	boot := binary.BigEndian.Uint64(seed[:8]) | 1 // never 0
	eng, err := engine.New(cfg, boot, mrand.New(mrand.NewPCG(binary.BigEndian.Uint64(seed[8:]), boot)))
	if err != nil {
		return nil, fmt.Errorf("mgmt: %w", err)
	}
	m := p.Management
	c, err := listen(m.Interface, m.Port, m.Address)
	if err != nil {
		return nil, fmt.Errorf("mgmt: %w", err)
	}
	s := &Service{
		log: log, eng: eng, conn: c, mgmt: *m, cfg: cfg, cluster: p.Cluster, node: p.Node, digest: p.Digest,
		keyDigest: keyDigest, lastWarn: map[engine.DropReason]time.Time{},
		kick: make(chan struct{}, 1), done: make(chan struct{}), now: time.Now,
		report: reportTargetOf(p),
	}
	s.table = newTableWriter(log)
	if reg != nil {
		if err := reg.Register(&collector{s: s}); err != nil {
			c.close()
			s.table.close()
			return nil, fmt.Errorf("mgmt: registering metrics: %w", err)
		}
	}
	s.mu.Lock()
	s.writeTableLocked()
	s.mu.Unlock()
	s.wg.Add(3)
	c.reader = true
	go s.readLoop(c)
	go s.timerLoop()
	go s.reportLoop()
	log.Info("management protocol started", "interface", m.Interface, "address", m.Address, "port", m.Port,
		"broadcast", m.Broadcast, "interval", m.DiscoveryInterval.D(), "deadAfter", m.DeadAfter,
		"authenticated", len(cfg.Keys) > 0, "members", len(m.Members), "bootId", fmt.Sprintf("%016x", boot))
	if len(cfg.Keys) == 0 {
		log.Warn("management protocol runs UNAUTHENTICATED, as the plan says: any host on the segment can impersonate a node")
	}
	return s, nil
}

// engineConfig builds the engine's configuration from a plan, reading the
// key file. It returns a digest of the keys for change logging.
func engineConfig(p *plan.Plan) (engine.Config, string, error) {
	m := p.Management
	cfg := engine.Config{
		Cluster: p.Cluster, Node: p.Node, Address: m.Address, Broadcast: m.Broadcast,
		Interval: m.DiscoveryInterval.D(), DeadAfter: m.DeadAfter, Version: uint8(m.Version),
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
	keyDigest := "none"
	switch {
	case m.Unauthenticated && m.KeyFile == "":
	case m.KeyFile == "":
		return cfg, "", errors.New("mgmt: the plan names no key file and does not say unauthenticated")
	default:
		keys, sum, err := readKeyFile(m.KeyFile)
		if err != nil {
			return cfg, "", fmt.Errorf("mgmt: key file %s: %w", m.KeyFile, err)
		}
		cfg.Keys, keyDigest = keys, sum
	}
	// Validate as the engine will, so Update can refuse before touching anything.
	if _, err := engine.New(cfg, 1, nil); err != nil {
		return cfg, "", fmt.Errorf("mgmt: %w", err)
	}
	return cfg, keyDigest, nil
}

func readKeyFile(path string) ([][]byte, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	if !st.Mode().IsRegular() {
		return nil, "", errors.New("not a regular file")
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 || perm&0o004 != 0 {
		return nil, "", fmt.Errorf("mode %04o lets others read or change the key; chmod 600 (or 640)", perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, "", err
	}
	keys, err := wire.ParseKeyFile(data)
	if err != nil {
		return nil, "", err
	}
	// A fingerprint per key (8 bytes of its SHA-256) for logs and change
	// detection; never the key.
	h := fmt.Sprintf("%d key(s)", len(keys))
	for _, k := range keys {
		h += fmt.Sprintf(" %x", sha256Short(k))
	}
	return keys, h, nil
}

// SetActive starts discovery (at once) when active, and stops it otherwise.
func (s *Service) SetActive(active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.eng.Active() == active {
		return
	}
	if active {
		s.log.Info("management discovery starts: this node is Active")
		for _, m := range s.cfg.Members {
			if m.Address == s.cfg.Address && !m.Director {
				s.log.Warn("this node is Active but the plan's members do not mark it a director: every node will drop its discovery (not-director)")
			}
		}
	} else {
		s.log.Info("management discovery stops: this node is no longer Active")
	}
	s.stepLocked(engine.SetActive{Active: active})
}

// Update applies a new plan in place. A plan it cannot apply (no
// management section, unreadable key file, socket that cannot be opened) is
// refused with an error and the running configuration stays in force.
func (s *Service) Update(p *plan.Plan) error {
	if p == nil || p.Management == nil {
		return errors.New("mgmt: the new plan has no management section (close the service instead)")
	}
	cfg, keyDigest, err := engineConfig(p)
	if err != nil {
		s.mu.Lock()
		s.counters.reloadsRefused++
		s.mu.Unlock()
		return err
	}
	m := p.Management
	s.mu.Lock()
	old := s.conn
	s.mu.Unlock()
	var nc *conn
	if m.Interface != old.ifname || m.Port != old.port {
		// The new socket first, beside the old one; swap only if it opened.
		if nc, err = listen(m.Interface, m.Port, m.Address); err != nil {
			s.mu.Lock()
			s.counters.reloadsRefused++
			s.mu.Unlock()
			return fmt.Errorf("mgmt: %w", err)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if nc != nil {
			nc.close()
		}
		return errors.New("mgmt: service is closed")
	}
	if nc != nil {
		s.conn = nc
		old.close() // its read loop ends
		s.wg.Add(1)
		nc.reader = true
		go s.readLoop(nc)
		s.log.Info("management socket moved", "interface", m.Interface, "port", m.Port)
	} else {
		s.conn.source = m.Address
	}
	if keyDigest != s.keyDigest {
		s.log.Info("management key file re-read: keys changed", "keys", keyDigest)
	}
	oldTable := s.mgmt.TableFile
	s.mgmt, s.cluster, s.node, s.digest, s.keyDigest, s.cfg, s.keyErr = *m, p.Cluster, p.Node, p.Digest, keyDigest, cfg, ""
	s.report = reportTargetOf(p)
	s.counters.reloadsOK++
	s.stepLocked(engine.Reconfigure{Config: cfg})
	if m.TableFile != oldTable {
		// A reader still following the old path must not act on a table
		// that is no longer kept: remove it.
		if oldTable != "" {
			if err := os.Remove(oldTable); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("removing the old management table file", "file", oldTable, "err", err)
			}
		}
		s.writeTableLocked()
	}
	return nil
}

// Close sends a last "leaving" answer to every director this node answers,
// stops, and marks the table file as not Active.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	wasActive := s.eng.Active()
	s.stepLocked(engine.Shutdown{})
	s.closed = true
	if wasActive {
		s.writeTableLocked()
	}
	err := s.conn.close()
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
	s.table.close()
	s.log.Info("management protocol stopped")
	return err
}

// Status is the JSON-able state for the agent's /status.
type Status struct {
	Cluster       string        `json:"cluster"`
	Node          string        `json:"node"`
	Digest        string        `json:"digest"` // of the plan in use, as sent in answers
	Active        bool          `json:"active"`
	Interface     string        `json:"interface"`
	Address       netip.Addr    `json:"address"`
	Broadcast     netip.Addr    `json:"broadcast"`
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

// Status returns the node's view: role, the directors it answers, and the
// table of nodes (every member "unseen" unless this node is Active).
func (s *Service) Status() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *Service) statusLocked() Status {
	st := s.eng.Stats()
	out := Status{
		Cluster: s.cluster, Node: s.node, Digest: s.digest, Active: s.eng.Active(),
		Interface: s.mgmt.Interface, Address: s.mgmt.Address, Broadcast: s.mgmt.Broadcast, Port: s.mgmt.Port,
		Interval: s.mgmt.DiscoveryInterval.String(), DeadAfter: s.mgmt.DeadAfter,
		Authenticated: s.mgmt.KeyFile != "", BootID: fmt.Sprintf("%016x", s.eng.BootID()),
		Answering: s.eng.Directors(), Nodes: s.eng.Table(),
		Stats: StatusStats{
			DiscoveriesSent: st.DiscoveriesSent, AnswersSent: st.AnswersSent,
			DiscoveriesReceived: st.DiscoveriesReceived, AnswersReceived: st.AnswersReceived,
			Drops: map[string]uint64{}, SendErrors: s.counters.sendErrors,
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

func (s *Service) readLoop(c *conn) {
	defer s.wg.Done()
	defer c.release()
	buf := make([]byte, 2048)
	quiet := 0 // drains in a row that found nothing
	for {
		s.mu.Lock()
		if s.closed || s.conn != c { // stopped, or replaced by Update
			s.mu.Unlock()
			return
		}
		got := 0
		for {
			n, src, ok, err := c.read(buf)
			if errors.Is(err, errClosed) {
				s.mu.Unlock()
				return
			}
			if err != nil {
				s.log.Error("management socket read failed", "err", err)
				break
			}
			if !ok {
				break
			}
			got++
			s.stepLocked(engine.Packet{Src: src, Data: buf[:n]})
		}
		pause := s.pauseLocked()
		s.mu.Unlock()

		if got > 0 {
			quiet = 0
		} else {
			quiet++
		}
		if quiet < 2 {
			// Traffic flows (a director's answers arrive over a quarter
			// interval): let datagrams gather, then drain them together.
			time.Sleep(pause)
			continue
		}
		// Quiet: block until the next datagram, at no cost.
		if err := c.wait(); err != nil {
			if errors.Is(err, errClosed) {
				return
			}
			s.log.Error("management socket wait failed", "err", err)
			time.Sleep(pause)
		}
		quiet = 0
	}
}

// pauseLocked is how long the read loop lets datagrams gather while
// traffic flows: a twentieth of the interval, at most 20 ms. Protocol
// timers are 100 ms and up; such a delay changes no outcome.
func (s *Service) pauseLocked() time.Duration {
	return min(s.mgmt.DiscoveryInterval.D()/20, 20*time.Millisecond)
}

func (s *Service) timerLoop() {
	defer s.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.mu.Lock()
		d := s.deadline
		s.mu.Unlock()
		// Wake at least every second for housekeeping: the load figure
		// and the key file.
		wait := housekeeping
		if !d.IsZero() {
			wait = min(max(time.Until(d), 0), housekeeping)
		}
		t.Reset(wait)
		select {
		case <-s.done:
			return
		case <-s.kick:
		case <-t.C:
			s.mu.Lock()
			if !s.closed {
				if now := s.now(); now.Sub(s.loadRead) >= housekeeping {
					s.loadRead = now
					if l, ok := readLoad(); ok {
						s.eng.Step(now, engine.SetLoad{Load: l})
					}
					s.checkKeyFileLocked()
				}
				if d := s.eng.Deadline(); !d.IsZero() && !s.now().Before(d) {
					s.stepLocked(engine.Tick{})
				}
			}
			s.mu.Unlock()
		}
	}
}

// stepLocked feeds one event to the engine and carries out its actions.
func (s *Service) stepLocked(ev engine.Event) {
	now := s.now()
	acts := s.eng.Step(now, ev)
	tableChanged := false
	for _, a := range acts {
		switch a := a.(type) {
		case engine.Send:
			if err := s.conn.send(a.To, a.Data); err != nil {
				s.counters.sendErrors++
				s.log.Warn("management send failed", "type", a.Type, "to", a.To, "err", err)
			}
		case engine.NodeChanged:
			lvl := slog.LevelInfo
			if a.To == engine.StatusDown {
				lvl = slog.LevelWarn
			}
			s.log.Log(context.Background(), lvl, "node "+string(a.To), "node", a.Name, "address", a.Address, "from", a.From, "reason", a.Reason)
		case engine.DirectorHeard:
			s.log.Info("answering director", "director", a.Name, "address", a.Address, "bootId", fmt.Sprintf("%016x", a.BootID))
		case engine.DirectorLost:
			s.log.Info("director silent, no longer answering it", "director", a.Name, "address", a.Address)
		case engine.Dropped:
			// Our own broadcast looping back is normal. Floods must not
			// flood the log: one line per reason per 10 s.
			if a.Reason != engine.DropOwn && now.Sub(s.lastWarn[a.Reason]) >= 10*time.Second {
				s.lastWarn[a.Reason] = now
				s.log.Warn("management message dropped (further drops for this reason are counted, logged at most every 10s)",
					"reason", a.Reason, "src", a.Src, "err", a.Err)
			}
		case engine.TableChanged:
			// Status changes are written at once; mere last-seen and load
			// refreshes at most every tableRefresh (a thousand rows of JSON
			// every second would cost more than the protocol itself).
			if !a.Refresh || now.Sub(s.tableAt) >= tableRefresh {
				tableChanged = true
			}
		}
	}
	if tableChanged {
		s.tableAt = now
		s.writeTableLocked()
	}
	if d := s.eng.Deadline(); d != s.deadline {
		s.deadline = d
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// housekeeping is how often the load figure is refreshed and the key file
// re-read.
const housekeeping = time.Second

// checkKeyFileLocked re-reads the key file so that a rotated key is in use
// within a second, without a plan reload (an unchanged plan is not
// reloaded). A file that became unusable is refused with one log line per
// distinct error, and the keys in use stay.
func (s *Service) checkKeyFileLocked() {
	if s.mgmt.KeyFile == "" {
		return
	}
	keys, sum, err := readKeyFile(s.mgmt.KeyFile)
	if err != nil {
		if msg := err.Error(); msg != s.keyErr {
			s.keyErr = msg
			s.counters.keyRefused++
			s.log.Error("management key file unusable; the keys in use stay", "file", s.mgmt.KeyFile, "err", err)
		}
		return
	}
	s.keyErr = ""
	if sum == s.keyDigest {
		return
	}
	cfg := s.cfg
	cfg.Keys = keys
	s.cfg, s.keyDigest = cfg, sum
	s.counters.keyReloads++
	s.log.Info("management key file changed; new keys in use", "file", s.mgmt.KeyFile, "keys", sum)
	s.stepLocked(engine.Reconfigure{Config: cfg})
}

// readLoad returns the 1-minute load average per CPU in per mille.
func readLoad() (uint16, bool) {
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
