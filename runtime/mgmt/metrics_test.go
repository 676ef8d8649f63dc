package mgmt

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/mgmt/engine"
)

// Every member of the table has a status series, one-hot over up, down and
// unseen, so an alert can name the scanning node that went down.
func TestNodeStatusPerMember(t *testing.T) {
	snap := Snapshot{Status: Status{Active: true, Nodes: []engine.Node{
		{Name: "dir-a", Director: true, Self: true, Status: engine.StatusUp},
		{Name: "scan-1", Status: engine.StatusDown},
		{Name: "scan-2", Status: engine.StatusUnseen},
	}}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() (Snapshot, bool) { return snap, true }))
	want := `
mwgc_mgmt_node_status{node="dir-a",status="down"} 0
mwgc_mgmt_node_status{node="dir-a",status="unseen"} 0
mwgc_mgmt_node_status{node="dir-a",status="up"} 1
mwgc_mgmt_node_status{node="scan-1",status="down"} 1
mwgc_mgmt_node_status{node="scan-1",status="unseen"} 0
mwgc_mgmt_node_status{node="scan-1",status="up"} 0
mwgc_mgmt_node_status{node="scan-2",status="down"} 0
mwgc_mgmt_node_status{node="scan-2",status="unseen"} 1
mwgc_mgmt_node_status{node="scan-2",status="up"} 0
`
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		if mf.GetName() != "mwgc_mgmt_node_status" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			got = append(got, fmt.Sprintf(`mwgc_mgmt_node_status{node=%q,status=%q} %v`, labels["node"], labels["status"], m.GetGauge().GetValue()))
		}
	}
	if strings.Join(got, "\n") != strings.TrimSpace(want) {
		t.Errorf("node status series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.TrimSpace(want))
	}
}
