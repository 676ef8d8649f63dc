package agent

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
)

// TestNotifyCommands: the plan's notify commands run for the states the
// node enters, with the group and state in their environment, and a
// command that hangs neither delays VRRP nor outlives its timeout.
func TestNotifyCommands(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := filepath.Join(dir, "hook")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$MWGC_GROUP $MWGC_FROM->$MWGC_STATE\" >> "+log+"\n"), 0o755)
	hang := filepath.Join(dir, "hang")
	os.WriteFile(hang, []byte("#!/bin/sh\nsleep 60\n"), 0o755)
	p := testPlan()
	p.VRRP.Notify = &plan.Notify{Backup: []string{script}, Active: []string{hang}, Fault: []string{script}, Timeout: plan.Duration(time.Second)}
	h := start(t, p)
	// Active at once after Backup: the hanging Active command runs while
	// the node goes on advertising.
	h.waitActive()
	c := h.net.conn(connV4)
	before := len(c.adverts(t, self))
	h.eventually("adverts while the Active command hangs", func() bool { return len(c.adverts(t, self)) > before+20 })
	h.eventually("the hanging command killed at its timeout", func() bool {
		return h.metric(`mwgc_agent_notify_total{result="timeout",state="Active"}`) == 1
	})
	h.net.setLink("eth0", false)
	h.eventually("Fault command", func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), "inside-v4 Active->Fault")
	})
	b, _ := os.ReadFile(log)
	if !strings.HasPrefix(string(b), "inside-v4 Initialize->Backup\n") {
		t.Errorf("log:\n%s", b)
	}
	h.eventually("both Backup and Fault counted", func() bool { n := h.status().Notify; return n != nil && n.OK == 2 })
	s := h.status()
	if s.Notify == nil || s.Notify.OK != 2 || s.Notify.Failed != 1 || !strings.Contains(s.Notify.LastFailure, "timeout "+hang) {
		t.Errorf("status notify: %+v", s.Notify)
	}
	if v := h.metric(`mwgc_agent_notify_total{result="ok",state="Backup"}`); v != 1 {
		t.Errorf("ok Backup commands: %v", v)
	}
}

// TestPage: "/" serves the cluster page of this node, self-contained.
func TestPage(t *testing.T) {
	h := start(t, testPlan())
	h.waitActive()
	rec := httptest.NewRecorder()
	h.agent.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:9792/", nil))
	body := rec.Body.String()
	for _, want := range []string{`<span class="state Active" id="state">Active</span>`, "This node is the Active director", `<tr data-group="inside-v4">`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if !strings.Contains(body, `<meta http-equiv="refresh" content="2">`) {
		t.Error("the page does not refresh itself")
	}
	rec = httptest.NewRecorder()
	h.agent.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/?refresh=0", nil))
	if strings.Contains(rec.Body.String(), `http-equiv="refresh"`) || !strings.Contains(rec.Body.String(), "This node is the Active director") {
		t.Error("?refresh=0 still refreshes, or is not the page")
	}
	rec = httptest.NewRecorder()
	h.agent.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/nothing", nil))
	if rec.Code != 404 {
		t.Errorf("/nothing: %d", rec.Code)
	}
}
