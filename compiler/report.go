package compiler

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteText prints one finding per line as file:line:col: severity rule:
// message, the hint indented below it, and a summary line.
func WriteText(w io.Writer, fs []Finding) error {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s\n", f)
		if f.Hint != "" {
			fmt.Fprintf(&b, "\thint: %s\n", f.Hint)
		}
	}
	e, wn, n := Counts(fs)
	if len(fs) == 0 {
		b.WriteString("valid: no findings\n")
	} else {
		fmt.Fprintf(&b, "%s: %s, %s, %s\n", map[bool]string{true: "invalid", false: "valid"}[e > 0], plural(e, "error"), plural(wn, "warning"), plural(n, "note"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// jsonReport follows the shape of `terraform validate -json`, which CI
// tools already parse; rule and hint are additions.
type jsonReport struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	NoteCount     int              `json:"note_count"`
	Diagnostics   []jsonDiagnostic `json:"diagnostics"`
}

type jsonDiagnostic struct {
	Severity string     `json:"severity"`
	Rule     string     `json:"rule"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail"`
	Range    *jsonRange `json:"range,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// WriteJSON prints the findings as one JSON document.
func WriteJSON(w io.Writer, fs []Finding) error {
	e, wn, n := Counts(fs)
	r := jsonReport{FormatVersion: "1.0", Valid: e == 0, ErrorCount: e, WarningCount: wn, NoteCount: n, Diagnostics: []jsonDiagnostic{}}
	for _, f := range fs {
		d := jsonDiagnostic{Severity: f.Severity.String(), Rule: f.Rule, Summary: f.Message, Detail: f.Hint}
		if f.Pos.File != "" {
			p := jsonPos{Line: f.Pos.Line, Column: f.Pos.Column, Byte: f.Pos.Offset}
			end := p
			if f.End.Line > 0 {
				end = jsonPos{Line: f.End.Line, Column: f.End.Column, Byte: f.End.Offset}
			}
			d.Range = &jsonRange{Filename: f.Pos.File, Start: p, End: end}
		}
		r.Diagnostics = append(r.Diagnostics, d)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// MaxAnnotations is how many annotations GitHub shows per step.
const MaxAnnotations = 10

// WriteGitHub prints workflow commands (::error file=...::message), most
// important first, at most MaxAnnotations of them, and one plain line
// summarising the rest.
func WriteGitHub(w io.Writer, fs []Finding) error {
	sorted := slices.Clone(fs)
	slices.SortStableFunc(sorted, func(a, b Finding) int { return cmp.Compare(a.Severity, b.Severity) })
	var b strings.Builder
	for i, f := range sorted {
		if i == MaxAnnotations {
			break
		}
		level := map[Severity]string{SeverityError: "error", SeverityWarning: "warning", SeverityNote: "notice"}[f.Severity]
		props := []string{}
		if f.Pos.File != "" {
			props = append(props, "file="+escapeProperty(f.Pos.File))
			if f.Pos.Line > 0 {
				props = append(props, fmt.Sprintf("line=%d", f.Pos.Line), fmt.Sprintf("col=%d", f.Pos.Column))
			}
		}
		props = append(props, "title="+escapeProperty("mwgc "+f.Rule))
		msg := f.Message
		if f.Hint != "" {
			msg += "\nhint: " + f.Hint
		}
		fmt.Fprintf(&b, "::%s %s::%s\n", level, strings.Join(props, ","), escapeData(msg))
	}
	if rest := sorted[min(len(sorted), MaxAnnotations):]; len(rest) > 0 {
		e, wn, n := Counts(rest)
		fmt.Fprintf(&b, "mwgc: %s not annotated (%s, %s, %s); run `mwgc validate` for all of them\n", plural(len(rest), "more finding"), plural(e, "error"), plural(wn, "warning"), plural(n, "note"))
	}
	e, wn, n := Counts(fs)
	fmt.Fprintf(&b, "mwgc: %s, %s, %s\n", plural(e, "error"), plural(wn, "warning"), plural(n, "note"))
	_, err := io.WriteString(w, b.String())
	return err
}

// escapeData escapes a workflow command's message.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// escapeProperty escapes a workflow command's property value.
func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
