// Package notify runs the plan's notify commands (keepalived's
// notify_master / notify_backup / notify_fault) for mwgc-agent: one at a
// time, in the order the node asked for them, each with a timeout, never
// blocking the caller. The node decides what to run (runtime/node,
// effect Notify); this package only executes.
package notify

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Job is one command to run.
type Job struct {
	Group, State string
	Command      []string
	// Env is the command's environment; PATH is added.
	Env     []string
	Timeout time.Duration
}

// Outcomes of a job, the label of the agent's metric.
const (
	OK      = "ok"      // exit status 0
	Failed  = "failed"  // another exit status, or killed by a signal
	Timeout = "timeout" // still running after Job.Timeout: killed
	Error   = "error"   // could not be started (not found, not executable)
	Dropped = "dropped" // the queue was full: not run
)

// Result is what became of a job.
type Result struct {
	Job      Job
	Outcome  string
	Err      error
	Output   string // standard output and error, at most OutputLimit bytes
	Duration time.Duration
}

// OutputLimit bounds the output kept of one run.
const OutputLimit = 4096

// path is the PATH commands run with: the plan names absolute paths, but
// scripts call other programs.
const path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Runner runs jobs one after another on its own goroutine.
type Runner struct {
	jobs   chan Job
	done   func(Result)
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New starts a runner that queues at most queue jobs beyond the one
// running; done is called on the runner's goroutine after each job, and
// from Submit for a dropped one.
func New(queue int, done func(Result)) *Runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{jobs: make(chan Job, queue), done: done, ctx: ctx, cancel: cancel}
	r.wg.Add(1)
	go r.loop()
	return r
}

// Submit queues j and returns at once; false (and a Dropped result) when
// the queue is full or the runner is closed.
func (r *Runner) Submit(j Job) bool {
	if r.ctx.Err() == nil {
		select {
		case r.jobs <- j:
			return true
		default:
		}
	}
	r.done(Result{Job: j, Outcome: Dropped, Err: errors.New("notify queue full")})
	return false
}

// Close kills a running command, drops what is queued (reported as
// Dropped) and waits for the runner to stop.
func (r *Runner) Close() {
	r.cancel()
	r.wg.Wait()
}

func (r *Runner) loop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			for {
				select {
				case j := <-r.jobs:
					r.done(Result{Job: j, Outcome: Dropped, Err: errors.New("agent stopping")})
				default:
					return
				}
			}
		case j := <-r.jobs:
			if r.ctx.Err() != nil {
				r.done(Result{Job: j, Outcome: Dropped, Err: errors.New("agent stopping")})
				continue
			}
			r.done(Run(r.ctx, j))
		}
	}
}

// Run runs one job and waits for it: the command in a process group of
// its own, killed whole (children too) at the timeout or when ctx ends.
func Run(ctx context.Context, j Job) Result {
	res := Result{Job: j}
	if len(j.Command) == 0 {
		res.Outcome, res.Err = Error, errors.New("no command")
		return res
	}
	timeout := j.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command(j.Command[0], j.Command[1:]...)
	cmd.Env = append([]string{path}, j.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A script that leaves a child holding its output open is done when
	// it exits; the pipes close a second later.
	cmd.WaitDelay = time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		res.Outcome, res.Err = Error, err
		return res
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		// The whole group: a shell script's children must not outlive it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
		res.Outcome, res.Err = Timeout, ctx.Err()
		if errors.Is(ctx.Err(), context.Canceled) {
			res.Outcome = Failed
		}
	}
	res.Duration = time.Since(start)
	res.Output = out.String()
	if res.Outcome != "" {
		return res
	}
	if err != nil {
		res.Outcome, res.Err = Failed, err
		return res
	}
	res.Outcome = OK
	return res
}

// limitedBuffer keeps the first OutputLimit bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := OutputLimit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
