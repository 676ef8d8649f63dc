package agent

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/node"
	"github.com/mwgc/mwgc/runtime/notify"
)

// notifyQueue bounds the notify commands waiting behind a running one; a
// flapping group beyond that loses commands (counted), not adverts.
const notifyQueue = 32

// notifier runs the node's Notify effects off the loop (runtime/notify).
type notifier struct {
	runner *notify.Runner
	total  *prometheus.CounterVec
	// stats are owned by the loop: results reach it by post.
	stats node.NotifyStatus
}

func (a *Agent) startNotifier() {
	a.notifier.runner = notify.New(notifyQueue, func(r notify.Result) {
		a.notifier.total.WithLabelValues(r.Job.State, r.Outcome).Inc()
		a.logNotify(r)
		a.post(func() { a.notifier.count(r) })
	})
}

func newNotifyCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "mwgc_agent", Name: "notify_total",
		Help: "Notify commands of the plan by the state entered and outcome: ok, failed, timeout, error (could not start), dropped (queue full).",
	}, []string{"state", "result"})
	reg.MustRegister(c)
	return c
}

// submitNotify hands a command to the runner; it never waits.
func (a *Agent) submitNotify(e node.Notify) {
	a.notifier.runner.Submit(notify.Job{Group: e.Group, State: e.State, Command: e.Command, Env: e.Env, Timeout: e.Timeout})
}

func (n *notifier) count(r notify.Result) {
	switch r.Outcome {
	case notify.OK:
		n.stats.OK++
		return
	case notify.Dropped:
		n.stats.Dropped++
	default:
		n.stats.Failed++
	}
	n.stats.LastFailure = fmt.Sprintf("%s %s (group %s, %s) at %s: %v", r.Outcome, r.Job.Command[0], r.Job.Group, r.Job.State,
		time.Now().UTC().Format(time.RFC3339), r.Err)
}

func (a *Agent) logNotify(r notify.Result) {
	args := []any{"group", r.Job.Group, "state", r.Job.State, "command", strings.Join(r.Job.Command, " "),
		"result", r.Outcome, "duration", r.Duration}
	if r.Outcome == notify.OK {
		a.log.Info("notify command ran", args...)
		return
	}
	a.log.Warn("notify command did not succeed", append(args, "err", r.Err, "output", strings.TrimSpace(r.Output))...)
}
