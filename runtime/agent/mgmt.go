package agent

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mwgc/mwgc/runtime/mgmt"
	"github.com/mwgc/mwgc/runtime/plan"
)

// StartManagementService starts runtime/mgmt's Service for a plan with a
// management section; mwgc-agent passes it as Config.StartManagement.
func StartManagementService(p *plan.Plan, log *slog.Logger, reg prometheus.Registerer) (Management, error) {
	s, err := mgmt.Start(p, log, reg)
	if err != nil {
		return nil, err
	}
	return s, nil
}
