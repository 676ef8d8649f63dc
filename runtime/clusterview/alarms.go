package clusterview

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// vrrpAlarmDrops are the VRRP drop reasons that mean someone sends what
// the plan does not allow (a rogue, a duplicate address, a forged or
// misconfigured peer), and every auth-* reason; the others are shown with
// the group.
var vrrpAlarmDrops = []string{"unknown-source", "own-source", "ttl", "not-owner", "leave-held"}

// mgmtQuietDrops are management drop reasons that are expected: the
// Active hears its own broadcast.
var mgmtQuietDrops = []string{"own"}

func (v *View) alarm(format string, args ...any) {
	v.Alarms = append(v.Alarms, Alarm{Severity: "alarm", Text: fmt.Sprintf(format, args...)})
}

func (v *View) warn(format string, args ...any) {
	v.Alarms = append(v.Alarms, Alarm{Severity: "warning", Text: fmt.Sprintf(format, args...)})
}

// alarms derives what needs attention from the document.
func (v *View) alarms(st status) {
	if v.State == "Fault" {
		v.alarm("Fault: interface %s down; this node takes no part in the election", strings.Join(v.InterfacesDown, ", "))
	}
	for _, g := range v.Groups {
		if g.State == "Active" {
			for _, vip := range g.Configured {
				if !slices.Contains(g.Held, vip) {
					v.alarm("group %s is Active but does not hold VIP %s", g.Name, vip)
				}
			}
		}
		for _, r := range sortedKeys(g.Drops) {
			if slices.Contains(vrrpAlarmDrops, r) || strings.HasPrefix(r, "auth") {
				v.alarm("group %s dropped %d adverts: %s", g.Name, g.Drops[r], r)
			}
		}
	}
	if len(v.Groups) > 0 && !v.Active && v.State == "Backup" && v.ActiveAddress == "" {
		v.warn("no Active heard yet")
	}
	if m := st.Management; m != nil {
		for _, r := range sortedKeys(m.Stats.Drops) {
			if n := m.Stats.Drops[r]; n > 0 && !slices.Contains(mgmtQuietDrops, r) {
				v.alarm("management protocol dropped %d messages: %s", n, r)
			}
		}
		if m.Stats.SendErrors > 0 {
			v.alarm("management protocol: %d send errors", m.Stats.SendErrors)
		}
		if !m.Authenticated {
			v.warn("the management protocol runs without authentication")
		}
	}
	for _, n := range v.Nodes {
		if n.Status == "down" {
			v.alarm("%s is down (since %s)", n.Name, n.Since)
		}
	}
	if n := st.Notify; n != nil && n.Failed+n.Dropped > 0 {
		v.warn("notify commands: %d failed, %d dropped; last: %s", n.Failed, n.Dropped, n.LastFailure)
	}
	if r := v.Reload; r != nil && r.Result != "ok" && r.Result != "unchanged" {
		v.alarm("last plan reload %s (%s): %s; the running plan stays in force", r.Result, r.At, r.Error)
	}
}

// genericAlarms shows a field named like "alarms" that another part of the
// agent added: a list of strings or objects, or an object of them.
func (v *View) genericAlarms(key string, raw json.RawMessage) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		for _, item := range list {
			v.alarm("%s: %s", key, compact(item))
		}
		return
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		for _, k := range sortedKeys(obj) {
			if c := compact(obj[k]); c != "0" && c != "false" && c != "[]" && c != "{}" && c != "null" && c != "" {
				v.alarm("%s: %s: %s", key, k, c)
			}
		}
	}
}
