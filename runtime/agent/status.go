package agent

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mwgc/mwgc/runtime/distributor"
	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/node"
)

// Status is the JSON document served on /status (built by the node).
type Status = node.Status

// GroupStatus is one VRRP group in Status.
type GroupStatus = node.GroupStatus

// queryTimeout bounds how long an HTTP request waits for the loop.
const queryTimeout = 2 * time.Second

// query runs f in the loop and waits for it; false when the loop is not
// running or does not answer in time.
func (a *Agent) query(f func()) bool {
	if !a.running.Load() {
		return false
	}
	done := make(chan struct{})
	if !a.post(func() { f(); close(done) }) {
		return false
	}
	select {
	case <-done:
		return true
	case <-time.After(queryTimeout):
		return false
	}
}

// Status returns the agent's status, or nil when the loop is not running
// or has no plan yet.
func (a *Agent) Status() *Status {
	var s *Status
	a.query(func() {
		s = a.node.Status()
		if s == nil {
			return
		}
		a.fillUnicast(s)
		if ms, ok := s.Management.(mgmt.Status); ok {
			ms.Stats.SendErrors = a.mgmtErrors
			s.Management = ms
		}
		if st := a.notifier.stats; st != (node.NotifyStatus{}) {
			s.Notify = &st
		}
	})
	return s
}

// mgmtSnapshot feeds the management metrics at scrape time.
func (a *Agent) mgmtSnapshot() (snap mgmt.Snapshot, ok bool) {
	a.query(func() {
		if snap, ok = a.node.MgmtSnapshot(); ok {
			snap.Status.Stats.SendErrors = a.mgmtErrors
			snap.TableErrors = a.table.Errors()
		}
	})
	return snap, ok
}

// distStatus feeds the distribution metrics at scrape time.
func (a *Agent) distStatus() (s distributor.Status, ok bool) {
	a.query(func() { s, ok = a.node.DistributionStatus() })
	return s, ok
}

// Handler serves /metrics, /status and /healthz.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		s := a.Status()
		if s == nil {
			http.Error(w, "agent not running", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s)
	})
	mux.HandleFunc("/{$}", a.servePage)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		// Healthy when the loop answers (a stuck loop misses adverts);
		// the question costs the loop nothing else.
		if !a.query(func() {}) {
			http.Error(w, "loop not answering", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}
