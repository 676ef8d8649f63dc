package engine

import (
	"testing"

	"github.com/mwgc/mwgc/runtime/mgmt/wire"
)

// TestReportReachesTheTable: version-2 answers carry the distribution
// report into the Active's table; a change of it is a table change at once
// (the director reprograms forwarding from it); version-1 answers from a
// node not yet upgraded are accepted and show as not reported.
func TestReportReachesTheTable(t *testing.T) {
	s := newSim(t, "dir-a")
	for i, n := range []string{"scan-1", "scan-2"} {
		cfg := testConfig(n)
		if n == "scan-1" {
			cfg.Version = wire.Version2
		}
		e, err := New(cfg, uint64(300+i), nil)
		if err != nil {
			t.Fatal(err)
		}
		s.nodes[addrOf(n)] = e
	}
	mac := [6]byte{0x02, 0, 0, 0, 0, 0x21}
	s.step(addrOf("scan-1"), SetReport{Report: wire.Report{Serving: true, MAC: mac}})
	s.step(addrOf("dir-a"), SetActive{Active: true})
	s.run(interval / 2)
	r := s.row("dir-a", "scan-1")
	if !r.Reported || !r.Serving || r.MAC != "02:00:00:00:00:21" || r.Status != StatusUp {
		t.Fatalf("scan-1 row %+v", r)
	}
	if r := s.row("dir-a", "scan-2"); r.Reported || r.Serving || r.MAC != "" || r.Status != StatusUp {
		t.Fatalf("version-1 scan-2 row %+v", r)
	}

	// The proxy closes: the next answer says so, and the table changes at once.
	e := s.engine("scan-1")
	e.Step(s.now, SetReport{Report: wire.Report{Serving: false, MAC: mac}})
	acts := s.engine("dir-a").Step(s.now, Packet{Src: addrOf("scan-1"), Data: answerNow(t, e, s)})
	changed := false
	for _, a := range acts {
		if tc, ok := a.(TableChanged); ok && !tc.Refresh {
			changed = true
		}
	}
	if !changed || s.row("dir-a", "scan-1").Serving {
		t.Fatalf("serving=false not a table change: %v, row %+v", acts, s.row("dir-a", "scan-1"))
	}

	// The Active's own row follows its own report.
	d := s.engine("dir-a")
	setVersion(s, d, wire.Version2)
	acts = d.Step(s.now, SetReport{Report: wire.Report{Serving: true, MAC: [6]byte{2, 0, 0, 0, 0, 0x11}}})
	if self := s.row("dir-a", "dir-a"); !self.Reported || !self.Serving || self.MAC != "02:00:00:00:00:11" || len(acts) != 1 {
		t.Fatalf("self row %+v after SetReport (%v)", self, acts)
	}
}

// answerNow makes e answer the director dir-a now, as its timer would.
func answerNow(t *testing.T, e *Engine, s *sim) []byte {
	t.Helper()
	for _, a := range e.sendAnswer(s.now, addrOf("dir-a"), wire.HealthAvailable, nil) {
		if snd, ok := a.(Send); ok {
			return snd.Data
		}
	}
	t.Fatal("no answer")
	return nil
}

func setVersion(s *sim, e *Engine, v uint8) {
	cfg := e.cfg
	cfg.Version = v
	e.Step(s.now, Reconfigure{Config: cfg})
}
