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

// TableWriter writes table snapshots off the protocol's path: the latest
// snapshot wins, earlier unwritten ones are skipped.
type TableWriter struct {
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

// NewTableWriter starts a writer; Close stops it after the last write.
func NewTableWriter(log *slog.Logger) *TableWriter {
	w := &TableWriter{log: log, wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go w.loop()
	return w
}

// Submit asks for doc to be written to path (atomically: a reader sees
// the old table or the new one).
func (w *TableWriter) Submit(path string, doc TableFile) {
	w.mu.Lock()
	w.pending = &tableJob{path: path, doc: doc}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *TableWriter) loop() {
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

func (w *TableWriter) flush() {
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

// Errors counts failed writes.
func (w *TableWriter) Errors() uint64 { return w.errors.Load() }

// Close writes what is pending and stops.
func (w *TableWriter) Close() {
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

func sha256Short(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:8]
}
