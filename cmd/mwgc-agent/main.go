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
		p, _, err := plan.ReadFile(*planPath)
		if err != nil {
			fmt.Fprintf(stderr, "mwgc-agent: %v\n", err)
			return exitBadInput
		}
		groups := 0
		if p.VRRP != nil {
			groups = len(p.VRRP.Groups)
		}
		fmt.Fprintf(stdout, "plan ok: cluster %s node %s, %d VRRP groups, management %v, %s\n",
			p.Cluster, p.Node, groups, p.Management != nil, p.Digest)
		return exitOK
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "mwgc-agent: --log-level: %v\n", err)
		return exitBadInput
	}
	opts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	switch *logFormat {
	case "json":
		log = slog.New(slog.NewJSONHandler(stdout, opts))
	case "text":
		log = slog.New(slog.NewTextHandler(stdout, opts))
	default:
		fmt.Fprintf(stderr, "mwgc-agent: --log-format: %q is not json or text\n", *logFormat)
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
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			if s == syscall.SIGHUP {
				log.Info("SIGHUP: reloading the plan")
				a.Reload()
				continue
			}
			log.Info("stopping", "signal", s.String())
			cancel()
		}
	}()

	err = a.Run(ctx)
	signal.Stop(sigs)
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
