package clusterview

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteText prints the view for a terminal: what `mwgc status` shows.
func WriteText(w io.Writer, v *View) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("cluster %s · node %s · %s · plan %s\n", v.Cluster, v.Node, v.State, ShortDigest(v.Digest))
	switch {
	case v.Active:
		p("Active: %s (this node)\n", v.Node)
	case v.ActiveAddress != "":
		name := v.ActiveNode
		if name == "" {
			name = "?"
		}
		p("Active: %s, advertising from %s", name, v.ActiveAddress)
		if v.ActiveManagement != "" {
			p("; ask it: mwgc status %s:PORT", v.ActiveManagement)
		}
		p("\n")
	default:
		p("Active: none heard\n")
	}
	p("\nAlarms:\n")
	if len(v.Alarms) == 0 {
		p("  none\n")
	}
	for _, a := range v.Alarms {
		mark := "!"
		if a.Severity != "alarm" {
			mark = "-"
		}
		p("  %s %s\n", mark, a.Text)
	}
	if len(v.Groups) > 0 {
		p("\nVRRP groups:\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  GROUP\tVRID\tINTERFACE\tSTATE\tVIPS\tHELD BY\tSENT/RECEIVED\tTRANSITIONS\tDROPS")
		for _, g := range v.Groups {
			fmt.Fprintf(tw, "  %s\t%d\t%s (%s)\t%s\t%s\t%s\t%d/%d\t%d\t%s\n", g.Name, g.VRID, g.Interface, g.Family, g.State,
				strings.Join(g.Configured, ", "), g.Holder, g.AdvertsSent, g.AdvertsRecv, g.Transitions, strings.TrimSpace(drops(g.Drops)+" "+fields(g.Extra)))
		}
		tw.Flush()
	}
	if len(v.Nodes) > 0 {
		p("\nNodes (roll-out: %s):\n", v.Rollout.Summary())
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  NODE\tROLE\tSTATE\tSINCE\tLAST ANSWER\tHEALTH\tLOAD\tRUNNING\tCOMPILED\tCURRENT\tRESTARTS\tMORE")
		for _, n := range v.Nodes {
			role := "scanning"
			if n.Director {
				role = "director"
			}
			name := n.Name
			if n.Self {
				name += "*"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, role, n.Status, dash(n.Since), dash(n.LastSeen),
				dash(n.Health), dash(n.Load), dash(ShortDigest(n.Digest)), dash(ShortDigest(n.Expected)), triText(n.InSync), n.Restarts, fields(n.Extra))
		}
		tw.Flush()
	} else if !v.Active {
		p("\nNodes: only the Active director knows every node.\n")
	}
	p("\nPlan: %s", v.Digest)
	if r := v.Reload; r != nil {
		p("; last reload %s, %s", r.Result, r.At)
		if r.Error != "" {
			p(": %s", r.Error)
		}
	}
	p("\n")
	if v.Management != "" {
		p("Management: %s\n", v.Management)
	}
	if v.Notify != "" {
		p("Notify: %s\n", v.Notify)
	}
	if len(v.Extra) > 0 {
		p("\nMore status:\n")
		for _, f := range v.Extra {
			p("  %s: %s\n", f.Key, f.Value)
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func triText(t Tri) string {
	switch t {
	case Yes:
		return "yes"
	case No:
		return "NO"
	}
	return "?"
}

func drops(m map[string]uint64) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return dash(strings.Join(parts, " "))
}

func fields(fs []Field) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, f.Key+"="+f.Value)
	}
	return strings.Join(parts, " ")
}
