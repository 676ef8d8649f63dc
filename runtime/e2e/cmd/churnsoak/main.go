// Command churnsoak forces failovers of mixed kinds on mwgc pairs (one
// with the interface's MAC, one with a virtual MAC) and prints what an
// independent observer counted: periods with two VIP holders longer than
// Active_Down_Interval once their cause was gone, VIPs left behind after
// the agents stop, and client blackholes after the election settled.
// Exit status 1 when any is not zero. Run as root:
//
//	go run ./runtime/e2e/cmd/churnsoak -events 1000
package main

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/mwgc/mwgc/runtime/e2e"
)

func main() {
	e2e.InitFlags()
	cfg := e2e.SoakConfig{Timing: e2e.BenchTiming}
	flag.IntVar(&cfg.Events, "events", 1000, "forced failovers in all")
	flag.DurationVar(&cfg.Interval, "interval", 100*time.Millisecond, "advert interval")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the fault sequence")
	flag.BoolVar(&cfg.VirtualMAC, "vmac", true, "add a pair with a virtual MAC, failing at the same time")
	flag.DurationVar(&cfg.Timing.Partition, "partition", cfg.Timing.Partition, "how long a partition lasts")
	flag.DurationVar(&cfg.Timing.Pause, "pause", cfg.Timing.Pause, "how long SIGSTOP lasts")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "churnsoak: needs root (network namespaces)")
		os.Exit(2)
	}
	var r *e2e.SoakReport
	failed := e2e.RunTB(func(tb testing.TB) { r = e2e.RunSoak(tb, cfg) })
	if r != nil {
		r.Print(os.Stdout)
	}
	if failed || r == nil || !r.OK() {
		fmt.Fprintln(os.Stderr, "churnsoak: FAILED")
		os.Exit(1)
	}
}
