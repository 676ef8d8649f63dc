package compiler

import (
	"slices"

	"github.com/mwgc/mwgc/runtime/plan"
)

// notifyPlan copies the cluster's notify commands into a director's plan.
func notifyPlan(n *notifyDoc) *plan.Notify {
	if n == nil {
		return nil
	}
	return &plan.Notify{Active: slices.Clone(n.Active), Backup: slices.Clone(n.Backup), Fault: slices.Clone(n.Fault), Timeout: dur(n.Timeout)}
}

// checkNotify checks the timeout; the schema checks the paths.
func (c *checker) checkNotify(cl *cluster) {
	v := cl.doc.VRRP
	if v == nil || v.Notify == nil {
		return
	}
	c.checkDuration(cl, sel("clusters", cl.name, "vrrp", "notify", "timeout"), v.Notify.Timeout, plan.MinNotifyTimeout, plan.MaxNotifyTimeout, 0)
}
