// Command mwgc-agent runs one node's plan: VRRP among the directors, the
// VIPs, the management protocol, hot reload of the plan file, and a status
// listener on loopback. See runtime/agent and docs/agent.md.
//
// Exit codes: 0 after a graceful stop (SIGTERM/SIGINT), 1 when the plan
// could not be started (sockets, addresses, listener), 2 for bad flags or a
// plan that does not decode and validate.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/mwgc/mwgc/runtime/agent"
	"github.com/mwgc/mwgc/runtime/buildinfo"
	"github.com/mwgc/mwgc/runtime/plan"
)

const (
	exitOK       = 0
	exitRuntime  = 1
	exitBadInput = 2
)

func main() {
	// One event loop does all the work; a second P only adds scheduler
	// wake-ups (spinning threads), which at 10 ms adverts more than double
	// the agent's CPU. An explicit GOMAXPROCS still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mwgc-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	planPath := fs.String("plan", "", "plan `file` written by mwgc compile (required); its directory is watched")
	listen := fs.String("listen", "127.0.0.1:9792", "`address` for /metrics, /status and /healthz (empty: none)")
	logFormat := fs.String("log-format", "json", "log format: json or text")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	check := fs.Bool("check", false, "only decode and validate the plan, print its digest, and exit")
	debounce := fs.Duration("reload-debounce", 150*time.Millisecond, "quiet `time` in the plan's directory before a change is read")
	version := fs.Bool("version", false, "print which build this is, and exit")
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: mwgc-agent --plan FILE [--check] [--listen ADDR] [--log-format json|text] [--log-level LEVEL]\n       mwgc-agent --version\n\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	fs.SetOutput(io.Discard) // a flag error is printed once, below
	fs.Usage = func() {}     // and the usage with it, where it belongs
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "mwgc-agent: %v\n", err)
		usage(stderr)
		return exitBadInput
	}
	if *version || (fs.NArg() == 1 && fs.Arg(0) == "version") {
		fmt.Fprintln(stdout, buildinfo.Read().String("mwgc-agent"))
		return exitOK
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mwgc-agent: unexpected arguments %q\n", fs.Args())
		usage(stderr)
		return exitBadInput
	}
	if *planPath == "" {
		fmt.Fprintln(stderr, "mwgc-agent: --plan is required")
		usage(stderr)
		return exitBadInput
	}
	if *check {
		return checkPlan(*planPath, stdout, stderr)
	}
	// Signals are taken from here on, before anything else: a SIGHUP
	// (systemctl reload) while the agent starts must not end it by the
	// default action, and a SIGTERM then is a stop like any other. Stops
	// have their own channel, so a storm of reloads cannot crowd one out.
	stops, hups := make(chan os.Signal, 2), make(chan os.Signal, 1)
	signal.Notify(stops, syscall.SIGTERM, syscall.SIGINT)
	signal.Notify(hups, syscall.SIGHUP)

	log, err := newLogger(stdout, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "mwgc-agent: %v\n", err)
		return exitBadInput
	}

	a, err := agent.New(agent.Config{
		PlanPath: *planPath,
		Logger:   log,
		Debounce: *debounce,
	})
	if err != nil {
		log.Error("plan refused", "path", *planPath, "err", err)
		return exitBadInput
	}

	var srv *http.Server
	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			log.Error("cannot open the status listener", "listen", *listen, "err", err)
			return exitRuntime
		}
		srv = &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		log.Info("status listener", "address", ln.Addr().String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			select {
			case <-hups:
				log.Info("SIGHUP: reloading the plan")
				a.Reload()
			case s := <-stops:
				log.Info("stopping", "signal", s.String())
				cancel()
			}
		}
	}()

	err = a.Run(ctx)
	signal.Stop(stops)
	signal.Stop(hups)
	if srv != nil {
		shutdownCtx, done := context.WithTimeout(context.Background(), time.Second)
		srv.Shutdown(shutdownCtx)
		done()
	}
	if err != nil {
		log.Error("cannot run the plan", "err", err)
		return exitRuntime
	}
	return exitOK
}

// checkPlan makes the checks a start makes, short of touching the network
// (agent.Check): exit 2 for a plan that does not decode or validate, 1 for
// one that would not start on this host, as a start would end.
func checkPlan(path string, stdout, stderr io.Writer) int {
	_, data, err := plan.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "mwgc-agent: %v\n", err)
		return exitBadInput
	}
	rep, err := agent.Check(data, nil)
	if err != nil {
		fmt.Fprintf(stderr, "mwgc-agent: %s: the plan would not start: %v\n", path, err)
		return exitRuntime
	}
	fmt.Fprint(stdout, rep)
	return exitOK
}

// newLogger makes the agent's logger. Durations are written as Go writes
// them ("100ms"), in JSON too, where slog would write nanoseconds.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not json or text", format)
}
