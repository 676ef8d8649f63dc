package compiler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sample() []Finding {
	return []Finding{
		{Severity: SeverityNote, Rule: "segment-waived", Message: "waived: lab, no other hosts", Pos: Position{"a.cue", 3, 2, 20}},
		{Severity: SeverityWarning, Rule: "single-director", Message: "one director", Hint: "add one", Pos: Position{"a.cue", 9, 4, 90}},
		{Severity: SeverityError, Rule: "vrid-duplicate", Message: "VRID 51: used, twice\nsecond line 100%", Hint: "pick another",
			Pos: Position{"dir,x/b:c.cue", 12, 3, 130}, End: Position{"dir,x/b:c.cue", 12, 5, 132}},
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sample()); err != nil {
		t.Fatal(err)
	}
	want := `a.cue:3:2: note segment-waived: waived: lab, no other hosts
a.cue:9:4: warning single-director: one director
	hint: add one
dir,x/b:c.cue:12:3: error vrid-duplicate: VRID 51: used, twice
second line 100%
	hint: pick another
invalid: 1 error, 1 warning, 1 note
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Error(diff)
	}
	b.Reset()
	WriteText(&b, nil)
	if b.String() != "valid: no findings\n" {
		t.Errorf("empty: %q", b.String())
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sample()); err != nil {
		t.Fatal(err)
	}
	var got jsonReport
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Valid || got.ErrorCount != 1 || got.WarningCount != 1 || got.NoteCount != 1 || got.FormatVersion != "1.0" {
		t.Errorf("header: %+v", got)
	}
	d := got.Diagnostics[2]
	want := jsonDiagnostic{Severity: "error", Rule: "vrid-duplicate", Summary: "VRID 51: used, twice\nsecond line 100%", Detail: "pick another",
		Range: &jsonRange{Filename: "dir,x/b:c.cue", Start: jsonPos{12, 3, 130}, End: jsonPos{12, 5, 132}}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Error(diff)
	}
	// A valid run still has a diagnostics array (never null).
	b.Reset()
	WriteJSON(&b, nil)
	if !strings.Contains(b.String(), `"diagnostics": []`) || !strings.Contains(b.String(), `"valid": true`) {
		t.Errorf("empty report: %s", b.String())
	}
}

func TestWriteGitHubEscapesAndOrders(t *testing.T) {
	var b bytes.Buffer
	if err := WriteGitHub(&b, sample()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{
		"::error file=dir%2Cx/b%3Ac.cue,line=12,col=3,title=mwgc vrid-duplicate::VRID 51: used, twice%0Asecond line 100%25%0Ahint: pick another",
		"::warning file=a.cue,line=9,col=4,title=mwgc single-director::one director%0Ahint: add one",
		"::notice file=a.cue,line=3,col=2,title=mwgc segment-waived::waived: lab, no other hosts",
		"mwgc: 1 error, 1 warning, 1 note",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Error(diff)
	}
}

func TestWriteGitHubCapsAnnotations(t *testing.T) {
	var fs []Finding
	for i := range 13 {
		fs = append(fs, Finding{Severity: SeverityWarning, Rule: "w", Message: fmt.Sprint("warn ", i), Pos: Position{"a.cue", i + 1, 1, 0}})
	}
	fs = append(fs, Finding{Severity: SeverityError, Rule: "e", Message: "the error", Pos: Position{"z.cue", 1, 1, 0}})
	var b bytes.Buffer
	WriteGitHub(&b, fs)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != MaxAnnotations+2 {
		t.Fatalf("got %d lines, want %d annotations and 2 summary lines:\n%s", len(lines), MaxAnnotations, b.String())
	}
	if !strings.HasPrefix(lines[0], "::error ") {
		t.Errorf("the error must come first: %s", lines[0])
	}
	if want := "mwgc: 4 more findings not annotated (0 errors, 4 warnings, 0 notes); run `mwgc validate` for all of them"; lines[MaxAnnotations] != want {
		t.Errorf("summary:\n got %s\nwant %s", lines[MaxAnnotations], want)
	}
}
