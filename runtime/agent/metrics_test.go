package agent

import (
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/mwgc/mwgc/runtime/buildinfo"
)

// scrape returns the /metrics text.
func (h *harness) scrape() string {
	rec := httptest.NewRecorder()
	h.agent.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// Error counters exist, at zero, from the start: an alert on their rate
// works before the first error, and a dashboard shows 0, not "no data".
// build_info says which build runs.
func TestMetricsPresentFromTheStart(t *testing.T) {
	h := start(t, testPlan())
	h.waitActive()
	text := h.scrape()
	info := buildinfo.Read()
	for _, want := range []string{
		`mwgc_agent_send_errors_total{group="inside-v4"} 0`,
		`mwgc_agent_vip_errors_total{group="inside-v4",op="add"} 0`,
		`mwgc_agent_vip_errors_total{group="inside-v4",op="remove"} 0`,
		`mwgc_agent_build_info{go_version="` + runtime.Version() + `",revision="` + info.Revision + `",version="` + info.Version + `"} 1`,
	} {
		if !strings.Contains(text, "\n"+want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}
