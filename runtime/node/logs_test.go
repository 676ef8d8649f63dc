package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/plan"
)

// runLogged runs a script in the scenario language (scenario_test.go) on a
// node that logs as JSON, and returns the log lines.
func runLogged(t *testing.T, script string) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := &world{t: t, node: New(Config{Logger: log, MgmtBootID: 0x5eed}), plans: map[string]*plan.Plan{},
		files: map[string]File{}, prepares: map[uint64]Prepare{}}
	for i, text := range strings.Split(script, "\n") {
		if text = strings.TrimSpace(text); text == "" {
			continue
		}
		if err := w.execUnchecked(text); err != nil {
			t.Fatalf("line %d: %s: %v", i+1, text, err)
		}
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// execUnchecked runs a statement; an event's effects are not compared
// (the logs are the point), but a Prepare is remembered for "ok".
func (w *world) execUnchecked(text string) error {
	f := strings.Fields(text)
	at, err := time.ParseDuration(f[0])
	if err != nil {
		return w.exec(scriptLine{text: text})
	}
	now := t0.Add(at)
	ev, err := w.event(now, f[1], f[2:])
	if err != nil {
		return err
	}
	for _, e := range w.node.Step(now, ev) {
		if p, ok := e.(Prepare); ok {
			w.prepares[p.Txn] = p
		}
	}
	return nil
}

// transitions returns the "transition" lines of one group as
// "from->to (reason)".
func transitions(lines []map[string]any, group string) []string {
	var out []string
	for _, l := range lines {
		if l["msg"] == "transition" && l["group"] == group {
			out = append(out, l["from"].(string)+"->"+l["to"].(string)+" ("+l["reason"].(string)+")")
		}
	}
	return out
}

const twoGroups = `plan two
group two inside vrid=51 src=192.0.2.11 vips=192.0.2.100/24 peers=192.0.2.12
group two outside vrid=52 if=eth1 src=198.51.100.11 vips=198.51.100.100/24 peers=198.51.100.12
0s links lo=up eth0=up eth1=up
0s load two
0s ok 1
`

// Entering Fault is logged as a transition to Fault, with the link that
// caused it, and leaving it as one from Fault: not as "to Initialize,
// reason shutdown", which is what the engine does underneath.
func TestFaultIsLoggedAsFault(t *testing.T) {
	lines := runLogged(t, twoGroups+`
3.21875s tick
4s link eth1 down
6s link eth1 up
`)
	got := transitions(lines, "inside")
	want := []string{"Initialize->Backup", "Backup->Active", "Active->Fault (interface eth1 down)", "Fault->Backup (every interface up)"}
	if len(got) != len(want) {
		t.Fatalf("transitions of inside:\n got %q\nwant %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("transition %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

// A group pulled along by the sync group names the group that led it, not
// a member index.
func TestSyncTransitionNamesTheGroup(t *testing.T) {
	lines := runLogged(t, twoGroups+`
1s recv inside prio=0
1.21875s tick
`)
	var reason string
	for _, l := range lines {
		if l["msg"] == "transition" && l["group"] == "outside" && l["to"] == "Active" {
			reason = l["reason"].(string)
		}
	}
	if !strings.Contains(reason, "group inside") || strings.Contains(reason, "member") {
		t.Errorf("outside became Active for reason %q; want it to name group inside", reason)
	}
}
