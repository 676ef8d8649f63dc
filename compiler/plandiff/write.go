package plandiff

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// ShortDigest is the form digests are shown in, here and on the cluster
// page: "sha256:" and the first 12 hex digits.
func ShortDigest(d string) string {
	const n = len("sha256:") + 12
	if len(d) > n {
		return d[:n]
	}
	return d
}

// WriteJSON writes the report as one indented JSON document.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteText writes the report for a terminal, in the manner of terraform
// plan: one line per change with its marker, what it does on the wire
// indented below it, then who is Active, the roll-out order, the digests
// to watch, and a summary line.
func WriteText(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	if !r.HasChanges() {
		p("No changes. %d node plans are identical in %s and %s.\n", r.Summary.PlansUnchanged, r.Base, r.Head)
		return bw.Flush()
	}
	p("mwgc plan: %s → %s\n", r.Base, r.Head)
	if len(r.Segments) > 0 {
		p("\nsegments\n")
		writeTextChanges(bw, r.Segments)
	}
	for _, cl := range r.Clusters {
		p("\n%s cluster %s (%s)\n", cl.Op.Symbol(), cl.Name, cl.Mode)
		writeTextChanges(bw, cl.Changes)
		if a := cl.Active; a != nil {
			p("\n%s", wrap("Active: "+activeText(a), "    ", "        "))
			if a.Reason != "" {
				p("%s", wrap(a.Reason, "        ", "        "))
			}
		}
		if len(cl.Order) > 0 {
			p("\n    Roll-out order:\n")
			for _, o := range cl.Order {
				p("%s", wrap(o, "      - ", "        "))
			}
		}
		p("\n    Plans (digests to watch on the cluster page):\n")
		for _, pc := range cl.Plans {
			p("      %-3s %-16s %s\n", pc.Op.Symbol(), pc.Node, digestChange(pc))
		}
		if cl.Unchanged > 0 {
			p("      %d unchanged\n", cl.Unchanged)
		}
	}
	p("\n%s\n", summaryText(r))
	return bw.Flush()
}

func writeTextChanges(w io.Writer, cs []Change) {
	for _, c := range cs {
		head := fmt.Sprintf("%s %s", c.Op.Symbol(), c.Subject)
		if c.Detail != "" {
			head += ": " + c.Detail
		}
		fmt.Fprint(w, wrap(head, "    ", "        "))
		fmt.Fprint(w, wrap(c.Effect, "          ", "          "))
	}
}

func activeText(a *Active) string {
	before, after := orDash(a.Before), orDash(a.After)
	s := before + " → " + after
	if !a.Moves {
		s = after + " (unchanged)"
	}
	if len(a.VIPs) > 0 {
		s += " (VIPs that move: " + strings.Join(a.VIPs, ", ") + ")"
	}
	if a.Assumed {
		s += fmt.Sprintf("; assuming %s, the best priority, is Active now: with preempt off, whoever won stays", before)
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func digestChange(pc PlanChange) string {
	switch pc.Op {
	case OpAdd:
		return "new " + ShortDigest(pc.After)
	case OpRemove:
		return ShortDigest(pc.Before) + " deleted"
	}
	return ShortDigest(pc.Before) + " → " + ShortDigest(pc.After)
}

func summaryText(r *Report) string {
	s := r.Summary
	out := fmt.Sprintf("Plan: clusters %d to add, %d to change, %d to remove; node plans %d to add, %d to change, %d to remove, %d unchanged.",
		s.ClustersAdded, s.ClustersChanged, s.ClustersRemoved, s.PlansAdded, s.PlansChanged, s.PlansRemoved, s.PlansUnchanged)
	switch {
	case len(s.ActiveMoves) > 0:
		out += " The Active changes in " + joinNames(s.ActiveMoves) + "."
	case !s.Wire:
		out += " No change on the wire."
	default:
		out += " No Active moves."
	}
	return out
}

// wrap breaks text into lines of at most 100 columns, the first with
// prefix first and the rest with prefix rest.
func wrap(text, first, rest string) string {
	const width = 100
	var b strings.Builder
	line := first
	empty := true
	for _, word := range strings.Fields(text) {
		if !empty && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += word
		empty = false
	}
	b.WriteString(line + "\n")
	return b.String()
}

// WriteMarkdown writes the report as a pull-request comment: a heading
// with the summary, a table per cluster, the Active, the roll-out order,
// and the digests folded away.
func WriteMarkdown(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("### mwgc plan: `%s` → `%s`\n\n", mdCode(r.Base), mdCode(r.Head))
	if !r.HasChanges() {
		p("No changes. %d node plans are identical.\n", r.Summary.PlansUnchanged)
		return bw.Flush()
	}
	p("%s\n", summaryText(r))
	if len(r.Segments) > 0 {
		p("\n#### segments\n\n")
		writeMarkdownTable(bw, r.Segments)
	}
	for _, cl := range r.Clusters {
		p("\n#### %s cluster `%s` (%s)\n\n", cl.Op.Symbol(), mdCode(cl.Name), cl.Mode)
		if a := cl.Active; a != nil {
			line := "**Active:** " + mdEscape(activeText(a))
			if a.Moves {
				line = "**Active moves:** " + mdEscape(activeText(a))
			}
			p("%s", line)
			if a.Reason != "" {
				p(" — %s", mdEscape(a.Reason))
			}
			p("\n\n")
		}
		writeMarkdownTable(bw, cl.Changes)
		if len(cl.Order) > 0 {
			p("\nRoll-out order:\n\n")
			for _, o := range cl.Order {
				p("- %s\n", mdEscape(o))
			}
		}
		p("\n<details><summary>Plans: %d changed, %d unchanged (digests to watch on the cluster page)</summary>\n\n", len(cl.Plans), cl.Unchanged)
		p("| node | | digest |\n|---|:-:|---|\n")
		for _, pc := range cl.Plans {
			p("| %s | %s | `%s` |\n", mdEscape(pc.Node), mdEscape(pc.Op.Symbol()), digestChange(pc))
		}
		p("\n</details>\n")
	}
	return bw.Flush()
}

func writeMarkdownTable(w io.Writer, cs []Change) {
	fmt.Fprint(w, "| | change | on the wire |\n|:-:|---|---|\n")
	for _, c := range cs {
		what := mdEscape(c.Subject)
		if c.Detail != "" {
			what += ": " + mdEscape(c.Detail)
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", mdEscape(c.Op.Symbol()), what, mdEscape(c.Effect))
	}
}

// mdEscape keeps text from breaking a table or turning into markup.
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;", ">", "&gt;", "\n", " ")
	return r.Replace(s)
}

// mdCode keeps a backtick inside code spans from ending them.
func mdCode(s string) string { return strings.ReplaceAll(s, "`", "'") }
