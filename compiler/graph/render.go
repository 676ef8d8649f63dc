package graph

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/mwgc/mwgc/compiler"
)

// Colours of a segment by protection, the same in both formats.
var segmentColours = map[string][2]string{ // fill, stroke
	classProtected:   {"#e6f4ea", "#1e8e3e"},
	classWaived:      {"#fef7e0", "#b06000"},
	classUnprotected: {"#fce8e6", "#c5221f"},
}

// WriteMermaid writes a Mermaid flowchart (no fence; see WriteMarkdown).
func WriteMermaid(w io.Writer, s *compiler.Snapshot) error {
	t := build(s)
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("flowchart LR\n")
	for _, c := range t.clusters {
		p("  subgraph %s[\"%s\"]\n", c.id, mermaidText(c.label))
		for _, b := range c.boxes {
			p("    %s\n", mermaidBox(b))
		}
		p("  end\n")
	}
	for _, b := range t.segments {
		p("  %s\n", mermaidBox(b))
	}
	for _, e := range t.edges {
		label := "|\"" + mermaidText(e.label) + "\"|"
		switch e.style {
		case edgeLink:
			p("  %s ---%s %s\n", e.from, label, e.to)
		case edgeArrow:
			p("  %s -->%s %s\n", e.from, label, e.to)
		default:
			p("  %s -.-%s %s\n", e.from, label, e.to)
		}
	}
	for _, class := range []string{classProtected, classWaived, classUnprotected} {
		c := segmentColours[class]
		p("  classDef %s fill:%s,stroke:%s,color:#000\n", class, c[0], c[1])
	}
	p("  classDef active stroke-width:3px\n")
	p("  classDef external stroke-dasharray:4 3\n")
	for _, class := range []string{classProtected, classWaived, classUnprotected, "active", "external"} {
		if ids := idsOf(t, class); len(ids) > 0 {
			p("  class %s %s\n", strings.Join(ids, ","), class)
		}
	}
	return bw.Flush()
}

// WriteMarkdown writes the Mermaid flowchart in a ```mermaid fence, ready
// for a pull-request comment.
func WriteMarkdown(w io.Writer, s *compiler.Snapshot) error {
	if _, err := io.WriteString(w, "```mermaid\n"); err != nil {
		return err
	}
	if err := WriteMermaid(w, s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "```\n")
	return err
}

func idsOf(t *topology, class string) []string {
	var ids []string
	each := func(b box) {
		if b.class == class || (class == "external" && b.kind == kindExternal) {
			ids = append(ids, b.id)
		}
	}
	for _, c := range t.clusters {
		for _, b := range c.boxes {
			each(b)
		}
	}
	for _, b := range t.segments {
		each(b)
	}
	return ids
}

// mermaidBox writes a box with the shape of its kind.
func mermaidBox(b box) string {
	var lines []string
	for _, l := range b.lines {
		lines = append(lines, mermaidText(l))
	}
	text := "\"" + strings.Join(lines, "<br/>") + "\""
	switch b.kind {
	case kindSegment:
		return b.id + "[(" + text + ")]"
	case kindGroup:
		return b.id + "{{" + text + "}}"
	case kindManagement:
		return b.id + "[/" + text + "/]"
	case kindScanner:
		return b.id + "(" + text + ")"
	}
	return b.id + "[" + text + "]"
}

// mermaidText escapes what would end a quoted label or read as markup:
// Mermaid's entity codes, not backslashes.
func mermaidText(s string) string {
	return strings.NewReplacer("#", "#35;", "\"", "#quot;", "<", "#lt;", ">", "#gt;", "\n", " ").Replace(s)
}

// WriteDOT writes a Graphviz digraph: `mwgc graph -o dot | dot -Tsvg`.
func WriteDOT(w io.Writer, s *compiler.Snapshot) error {
	t := build(s)
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("digraph mwgc {\n")
	p("  graph [rankdir=LR, fontname=\"sans-serif\", fontsize=11];\n")
	p("  node [fontname=\"sans-serif\", fontsize=10, shape=box, style=rounded];\n")
	p("  edge [fontname=\"sans-serif\", fontsize=9];\n")
	for _, c := range t.clusters {
		p("  subgraph cluster_%s {\n    label=%s;\n", c.id, dotString(c.label))
		for _, b := range c.boxes {
			p("    %s\n", dotBox(b))
		}
		p("  }\n")
	}
	for _, b := range t.segments {
		p("  %s\n", dotBox(b))
	}
	for _, e := range t.edges {
		attrs := "label=" + dotString(e.label)
		switch e.style {
		case edgeLink:
			attrs += ", dir=none"
		case edgeDotted:
			attrs += ", dir=none, style=dashed"
		}
		p("  %s -> %s [%s];\n", e.from, e.to, attrs)
	}
	p("}\n")
	return bw.Flush()
}

func dotBox(b box) string {
	attrs := []string{"label=" + dotString(strings.Join(b.lines, "\n"))}
	switch b.kind {
	case kindSegment:
		c := segmentColours[b.class]
		attrs = append(attrs, "shape=cylinder", "style=filled", fmt.Sprintf("fillcolor=%q", c[0]), fmt.Sprintf("color=%q", c[1]))
	case kindGroup:
		attrs = append(attrs, "shape=hexagon")
	case kindManagement:
		attrs = append(attrs, "shape=parallelogram")
	case kindExternal:
		attrs = append(attrs, "style=\"rounded,dashed\"")
	case kindScanner:
		attrs = append(attrs, "shape=ellipse")
	}
	if b.class == "active" {
		attrs = append(attrs, "penwidth=3")
	}
	return b.id + " [" + strings.Join(attrs, ", ") + "];"
}

// dotString quotes s as a DOT string: backslash and quote escaped, line
// breaks as \n.
func dotString(s string) string {
	return "\"" + strings.NewReplacer("\\", "\\\\", "\"", "\\\"", "\n", "\\n").Replace(s) + "\""
}
