package agent

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/mwgc/mwgc/runtime/clusterview"
)

// pageRefresh is how often the cluster page reloads itself, unless the
// URL asks otherwise: ?refresh=SECONDS (1..3600), 0 for never.
const pageRefresh = 2 * time.Second

func refreshOf(r *http.Request) time.Duration {
	q := r.URL.Query().Get("refresh")
	if q == "" {
		return pageRefresh
	}
	n, err := strconv.Atoi(q)
	switch {
	case err != nil || n < 0:
		return pageRefresh
	case n == 0:
		return -1
	}
	return time.Duration(min(n, 3600)) * time.Second
}

// servePage serves the cluster page on "/": the status document rendered
// by runtime/clusterview, the same view `mwgc status` prints.
func (a *Agent) servePage(w http.ResponseWriter, r *http.Request) {
	s := a.Status()
	if s == nil {
		http.Error(w, "agent not running", http.StatusServiceUnavailable)
		return
	}
	now := time.Now()
	doc, err := json.Marshal(s)
	var v *clusterview.View
	if err == nil {
		v, err = clusterview.Parse(doc, now)
	}
	if err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	_, port, _ := net.SplitHostPort(r.Host)
	if port == "" {
		port = "80"
	}
	var b bytes.Buffer
	if err := clusterview.WriteHTML(&b, v, clusterview.PageOptions{Refresh: refreshOf(r), Port: port, Generated: now}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Nothing but this document and its inline style: no script, no
	// other origin, no framing.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}
