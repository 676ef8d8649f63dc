package compiler

import (
	"cmp"
	"fmt"
	"slices"
)

// Severity orders findings: errors make validate fail, warnings and notes
// do not.
type Severity int

const (
	SeverityError Severity = iota
	SeverityWarning
	SeverityNote
)

func (s Severity) String() string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	case SeverityNote:
		return "note"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// Position is a place in one of the user's files. Line and Column start
// at 1; Offset is the byte offset. A zero Line means the finding has no
// position (for example a path that could not be read).
type Position struct {
	File   string `json:"filename"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Offset int    `json:"byte"`
}

func (p Position) String() string {
	if p.Line == 0 {
		if p.File == "" {
			return "-"
		}
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Finding is one problem (or note) about the repository.
type Finding struct {
	Severity Severity
	// Rule is a stable identifier such as "vrid-duplicate" (see README.md).
	Rule    string
	Message string
	Hint    string
	Pos     Position
	// End is just after the offending text (same file as Pos); zero when
	// not known.
	End Position
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s %s: %s", f.Pos, f.Severity, f.Rule, f.Message)
}

// SortFindings orders findings by file, line, column, then rule, so that
// output is stable and reads top to bottom.
func SortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column),
			cmp.Compare(a.Severity, b.Severity),
			cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

// Counts returns how many findings of each severity there are.
func Counts(fs []Finding) (errs, warns, notes int) {
	for _, f := range fs {
		switch f.Severity {
		case SeverityError:
			errs++
		case SeverityWarning:
			warns++
		default:
			notes++
		}
	}
	return
}

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	e, _, _ := Counts(fs)
	return e > 0
}
