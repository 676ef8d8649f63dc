package mgmt

import (
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mwgc/mwgc/runtime/atomicfile"
	"github.com/mwgc/mwgc/runtime/mgmt/engine"
)

// TableFile is the JSON document written to the plan's tableFile, for a
// load distributor to follow. Only the Active director's file has
// active=true; a node that is not Active writes every member as "unseen".
type TableFile struct {
	Cluster   string        `json:"cluster"`
	Node      string        `json:"node"`
	Active    bool          `json:"active"`
	Written   time.Time     `json:"written"`
	Interval  string        `json:"interval"`
	DeadAfter int           `json:"deadAfter"`
	Counts    NodeCounts    `json:"counts"`
	Nodes     []engine.Node `json:"nodes"`
}

// Table is the table file's document for this status, written at now.
func (st Status) Table(now time.Time) TableFile {
	return TableFile{
		Cluster: st.Cluster, Node: st.Node, Active: st.Active, Written: now.UTC(),
		Interval: st.Interval, DeadAfter: st.DeadAfter, Counts: st.Counts, Nodes: st.Nodes,
	}
}

// tableWriter writes table snapshots off the protocol's path: the latest
// snapshot wins, earlier unwritten ones are skipped.
type tableWriter struct {
	log     *slog.Logger
	mu      sync.Mutex
	pending *tableJob
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	errors  atomic.Uint64 // failed writes
}

type tableJob struct {
	path string
	doc  TableFile
}

func newTableWriter(log *slog.Logger) *tableWriter {
	w := &tableWriter{log: log, wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go w.loop()
	return w
}

func (w *tableWriter) submit(j *tableJob) {
	w.mu.Lock()
	w.pending = j
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *tableWriter) loop() {
	defer close(w.stopped)
	for {
		select {
		case <-w.wake:
			w.flush()
		case <-w.done:
			w.flush()
			return
		}
	}
}

func (w *tableWriter) flush() {
	w.mu.Lock()
	j := w.pending
	w.pending = nil
	w.mu.Unlock()
	if j == nil {
		return
	}
	err := writeFileAtomic(j.path, &j.doc)
	if err != nil {
		w.errors.Add(1)
		w.log.Error("writing the management table file failed", "file", j.path, "err", err)
	}
}

func (w *tableWriter) close() {
	close(w.done)
	<-w.stopped
}

// writeFileAtomic writes doc to a temporary file beside path and renames
// it over path, so a reader sees the old table or the new one, never a mix.
func writeFileAtomic(path string, doc *TableFile) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	return atomicfile.WriteFile(path, b, 0o644)
}

// writeTableLocked hands the current table to the writer (s.mu held).
func (s *Service) writeTableLocked() {
	if s.mgmt.TableFile == "" {
		return
	}
	s.table.submit(&tableJob{path: s.mgmt.TableFile, doc: s.statusLocked().Table(s.now())})
	s.counters.tableWrites++
}

func sha256Short(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:8]
}
