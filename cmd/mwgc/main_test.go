package main

import (
	"net"
	"net/http"
	"os"
	"os/signal"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"mwgc":         func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
		"serve-status": serveStatus,
	})
}

// serveStatus FILE ADDRFILE serves FILE as /status on a loopback port,
// writes host:port to ADDRFILE and runs until killed: an agent for the
// mwgc status scripts.
func serveStatus() {
	body, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	if err := os.WriteFile(os.Args[2]+".tmp", []byte(ln.Addr().String()), 0o644); err != nil {
		panic(err)
	}
	os.Rename(os.Args[2]+".tmp", os.Args[2])
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	go http.Serve(ln, mux)
	<-stop
}

// TestScripts runs testdata/script/*.txtar: exit codes, the three output
// formats, compile's refusal, idempotence and stale-plan removal.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// The bundled examples, read-only from the repository.
			env.Setenv("EXAMPLES", mustAbs("../../examples"))
			// Status documents of an Active, a Backup and a node in Fault.
			env.Setenv("STATUS", mustAbs("../../runtime/clusterview/testdata"))
			return nil
		},
	})
}

func mustAbs(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return wd + "/" + p
}
