package e2e

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// InitFlags prepares a benchmark or soak command's flags: the testing
// package's own (which RunTB needs registered) stay settable but are left
// out of -h, which lists only the command's.
func InitFlags() {
	testing.Init()
	flag.Usage = func() {
		own := flag.NewFlagSet(os.Args[0], flag.ContinueOnError)
		own.SetOutput(flag.CommandLine.Output())
		flag.VisitAll(func(f *flag.Flag) {
			if !strings.HasPrefix(f.Name, "test.") {
				own.Var(f.Value, f.Name, f.Usage)
			}
		})
		fmt.Fprintf(own.Output(), "Usage of %s:\n", os.Args[0])
		own.PrintDefaults()
	}
}

// RunTB runs fn with a testing.TB outside `go test` (for the benchmark
// and soak commands, which reuse the labs of the tests): what the lab
// logs goes to stderr, cleanups run when fn returns, and the result says
// whether fn failed.
func RunTB(fn func(tb testing.TB)) (failed bool) {
	testing.Init()
	var once sync.Once
	ran := false
	testing.Benchmark(func(b *testing.B) {
		once.Do(func() {
			ran = true
			defer func() { failed = b.Failed() }()
			fn(loudTB{b})
		})
	})
	RemoveBuilds()
	return failed || !ran
}

// loudTB prints what the lab reports: testing.Benchmark keeps a
// benchmark's log to itself.
type loudTB struct{ testing.TB }

func (l loudTB) Log(args ...any)                 { fmt.Fprintln(os.Stderr, args...) }
func (l loudTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (l loudTB) Error(args ...any)               { l.Log(args...); l.Fail() }
func (l loudTB) Errorf(format string, args ...any) {
	l.Logf(format, args...)
	l.Fail()
}
func (l loudTB) Fatal(args ...any) { l.Log(args...); l.FailNow() }
func (l loudTB) Fatalf(format string, args ...any) {
	l.Logf(format, args...)
	l.FailNow()
}
func (l loudTB) Skip(args ...any) { l.Log(args...); l.SkipNow() }
func (l loudTB) Skipf(format string, args ...any) {
	l.Logf(format, args...)
	l.SkipNow()
}
