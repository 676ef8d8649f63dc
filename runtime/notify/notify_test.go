package notify

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// collector gathers results from the runner's goroutine.
type collector struct {
	mu  sync.Mutex
	res []Result
	ch  chan Result
}

func newCollector() *collector { return &collector{ch: make(chan Result, 100)} }

func (c *collector) done(r Result) {
	c.mu.Lock()
	c.res = append(c.res, r)
	c.mu.Unlock()
	c.ch <- r
}

func (c *collector) next(t *testing.T) Result {
	t.Helper()
	select {
	case r := <-c.ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no result")
	}
	return Result{}
}

func sh(script string, timeout time.Duration, env ...string) Job {
	return Job{Group: "g", State: "Active", Command: []string{"/bin/sh", "-c", script}, Env: env, Timeout: timeout}
}

// TestRunsInOrderWithEnvironment: jobs run one after another, in the
// order submitted, with the environment given (and a PATH).
func TestRunsInOrderWithEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "log")
	c := newCollector()
	r := New(16, c.done)
	defer r.Close()
	for i, state := range []string{"Backup", "Active", "Fault", "Backup"} {
		// Earlier jobs sleep longer: only serial execution keeps the order.
		script := "sleep 0." + strconv.Itoa(4-i) + "; echo \"$MWGC_STATE $MWGC_REASON\" >> " + file + "; command -v sleep >/dev/null"
		if !r.Submit(sh(script, 5*time.Second, "MWGC_STATE="+state, "MWGC_REASON=because "+strconv.Itoa(i))) {
			t.Fatal("submit refused")
		}
	}
	for range 4 {
		if res := c.next(t); res.Outcome != OK {
			t.Fatalf("%+v", res)
		}
	}
	b, _ := os.ReadFile(file)
	want := "Backup because 0\nActive because 1\nFault because 2\nBackup because 3\n"
	if string(b) != want {
		t.Errorf("log:\n%s\nwant:\n%s", b, want)
	}
}

func TestOutcomes(t *testing.T) {
	ctx := context.Background()
	if res := Run(ctx, sh("echo oops >&2; exit 3", time.Second)); res.Outcome != Failed || !strings.Contains(res.Output, "oops") || res.Err == nil {
		t.Errorf("exit 3: %+v", res)
	}
	if res := Run(ctx, Job{Command: []string{"/nonexistent/script"}}); res.Outcome != Error {
		t.Errorf("missing command: %+v", res)
	}
	if res := Run(ctx, Job{}); res.Outcome != Error {
		t.Errorf("empty command: %+v", res)
	}
	long := strings.Repeat("x", 3*OutputLimit)
	if res := Run(ctx, sh("echo "+long, time.Second)); res.Outcome != OK || len(res.Output) != OutputLimit {
		t.Errorf("output kept: %d bytes, outcome %s", len(res.Output), res.Outcome)
	}
}

// TestTimeoutKillsTheGroup: a command still running at its timeout is
// killed with every process it started.
func TestTimeoutKillsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	res := Run(context.Background(), sh("sleep 60 & echo $! > "+pidFile+"; wait", 2*time.Second))
	if res.Outcome != Timeout {
		t.Fatalf("%+v", res)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// The child is gone (a zombie reaped by init at worst): signal 0 fails
	// once it has been reaped; give init a moment.
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script's child %d survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSubmitNeverBlocks: with a job running and the queue full, Submit
// returns false at once and reports the job dropped.
func TestSubmitNeverBlocks(t *testing.T) {
	c := newCollector()
	r := New(1, c.done)
	release := filepath.Join(t.TempDir(), "go")
	wait := sh("while [ ! -e "+release+" ]; do sleep 0.02; done", 10*time.Second)
	r.Submit(wait) // running
	for !r.queueEmpty() {
		time.Sleep(time.Millisecond)
	}
	if !r.Submit(wait) {
		t.Fatal("the one queue slot was refused")
	}
	if r.Submit(sh("true", time.Second)) {
		t.Fatal("a job beyond the queue was accepted")
	}
	if res := c.next(t); res.Outcome != Dropped {
		t.Fatalf("first result %+v, want the dropped job", res)
	}
	os.WriteFile(release, nil, 0o644)
	for range 2 {
		if res := c.next(t); res.Outcome != OK {
			t.Fatalf("%+v", res)
		}
	}
	r.Close()
	if r.Submit(sh("true", time.Second)) {
		t.Error("a closed runner accepted a job")
	}
}

// TestCloseKillsAndDrops: Close ends a running command and drops the queue.
func TestCloseKillsAndDrops(t *testing.T) {
	c := newCollector()
	r := New(4, c.done)
	started := filepath.Join(t.TempDir(), "started")
	r.Submit(sh("touch "+started+"; sleep 60", time.Minute))
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Submit(sh("true", time.Second))
	start := time.Now()
	r.Close()
	got := map[string]int{}
	for range 2 {
		got[c.next(t).Outcome]++
	}
	if got[Failed] != 1 || got[Dropped] != 1 {
		t.Errorf("outcomes %v, want one killed (failed) and one dropped", got)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Close took %v", d)
	}
}

// queueEmpty: the worker has taken every job submitted.
func (r *Runner) queueEmpty() bool { return len(r.jobs) == 0 }
