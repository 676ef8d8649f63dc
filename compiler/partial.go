package compiler

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/scanner"
	"cuelang.org/go/cue/token"
)

// A file that does not parse must not hide the findings of the other files
// of its package. CUE evaluation is monotonic: whatever the missing file
// holds can only add constraints, so a wrong type, an out-of-range value,
// an unknown field or a conflict among the files that parse stays wrong.
// What the missing file may well supply is not reported: missing fields,
// values left incomplete, names it defines. And the semantic rules, which
// need whole clusters and segments, skip the package.

// partialPackage describes a package loaded without the files that do
// not parse.
type partialPackage struct {
	syntax []errors.Error
	// unparsed and dropped are file names: those that do not parse, and
	// those left out because they refer to names the unparsed files may
	// define.
	unparsed, dropped []string
	// names are the identifiers and strings of the unparsed files: a
	// segment named there may be defined there.
	names map[string]bool
}

const partialHint = "fix the CUE syntax here. Until this file parses, its package is checked without it: " +
	"wrong types and ranges, unknown fields and conflicts in the other files are reported; " +
	"missing fields and the rules over whole clusters and segments (addresses, VRIDs, protocols) are not checked for this package"

// loadErrors sorts the load errors of a package: syntax errors of single
// files leave the other files to check (a *partialPackage); anything else
// stops the package (false), after reporting.
func (l *loader) loadErrors(dir string, files []string, bi *build.Instance) (*partialPackage, bool) {
	loaded := map[string]bool{}
	for _, f := range bi.Files {
		loaded[f.Filename] = true
	}
	part := &partialPackage{names: map[string]bool{}}
	ok := len(bi.Files) > 0
	for _, e := range errors.Errors(bi.Err) {
		ps := errors.Positions(e)
		switch {
		case len(ps) == 0:
			// The package as a whole could not be loaded (mixed package
			// names, unreadable files).
			l.packageError(dir, files, e)
			ok = false
		case loaded[ps[0].Filename()]:
			// A file that parsed and still failed to load (an import):
			// the package cannot be built.
			l.cueErrors(e, nil, "load", "fix this first: the package cannot be loaded until then")
			ok = false
		default:
			part.syntax = append(part.syntax, e)
			if name := ps[0].Filename(); !slices.Contains(part.unparsed, name) {
				part.unparsed = append(part.unparsed, name)
			}
		}
	}
	if !ok {
		for _, e := range part.syntax {
			l.cueErrors(e, nil, "syntax", "fix the CUE syntax at this position")
		}
		return nil, false
	}
	for _, name := range part.unparsed {
		addNames(part.names, name)
	}
	bi.Err = nil // the files that parse are the package now
	return part, true
}

// build returns the instance to evaluate: the files that parse, less
// those that refer to names the unparsed files may define (such a
// reference fails the whole package, not just the field), found one round
// at a time; nil when no file is left. A built instance keeps its result,
// so each round loads the remaining files afresh.
func (p *partialPackage) build(l *loader, dir string, bi *build.Instance) *build.Instance {
	for range len(bi.Files) {
		err := l.ctx.BuildInstance(bi).Err()
		if err == nil {
			return bi
		}
		drop := map[string]bool{}
		for _, e := range errors.Errors(err) {
			if ps := errors.Positions(e); len(ps) > 0 && strings.Contains(errMsg(e), "reference") && strings.Contains(errMsg(e), "not found") {
				drop[ps[0].Filename()] = true
			}
		}
		if len(drop) == 0 {
			return bi
		}
		var keep []string
		for _, f := range bi.Files {
			if drop[f.Filename] {
				p.dropped = append(p.dropped, f.Filename)
			} else {
				keep = append(keep, filepath.Base(f.Filename))
			}
		}
		if len(keep) == 0 {
			return nil
		}
		next := load.Instances(keep, &load.Config{Dir: dir})
		if len(next) != 1 || next[0].Err != nil {
			return bi
		}
		bi = next[0] // schema copies are not in keep: dropped already
	}
	return bi
}

// reportUnparsed reports the syntax errors, saying what was checked.
func (l *loader) reportUnparsed(p *partialPackage) {
	hint := partialHint
	if len(p.dropped) > 0 {
		var names []string
		for _, f := range p.dropped {
			names = append(names, l.rel(f))
		}
		hint += "; not checked at all: " + strings.Join(names, ", ") + " (they refer to names defined nowhere else)"
	}
	for _, e := range p.syntax {
		l.cueErrors(e, nil, "syntax", hint)
	}
}

// mayDefine reports whether an unparsed file mentions name.
func (p *partialPackage) mayDefine(name string) bool {
	return p != nil && p.names[name]
}

// addNames adds the identifiers and string literals of a file to names.
// The scanner reads what the parser cannot.
func addNames(names map[string]bool, filename string) {
	src, err := os.ReadFile(filename)
	if err != nil {
		return
	}
	var s scanner.Scanner
	s.Init(token.NewFile(filename, -1, len(src)), src, func(token.Pos, string, []any) {}, 0)
	for {
		_, tok, lit := s.Scan()
		switch tok {
		case token.EOF:
			return
		case token.IDENT:
			names[lit] = true
		case token.STRING:
			if u, err := literal.Unquote(lit); err == nil {
				names[u] = true
			}
		}
	}
}

// packageError reports a package that cannot be loaded as a whole. Mixed
// package names are reported at the package clause of each file that
// differs from the rest.
func (l *loader) packageError(dir string, files []string, e errors.Error) {
	msg := l.relMsg(errMsg(e))
	if !strings.Contains(msg, "found packages") {
		l.add(Finding{Severity: SeverityError, Rule: "load", Message: msg, Hint: "keep one CUE package per directory", Pos: Position{File: l.rel(dir)}})
		return
	}
	clauses := l.packageClauses(dir, files)
	count := map[string]int{}
	for _, c := range clauses {
		count[c.name]++
	}
	// The package most files name is the package; a tie goes to the name
	// that sorts first.
	main := ""
	for _, name := range sortedKeys(count) {
		if main == "" || count[name] > count[main] {
			main = name
		}
	}
	for _, c := range clauses {
		if c.name == main {
			continue
		}
		what := fmt.Sprintf("package %s", c.name)
		if c.name == "" {
			what = "no package clause"
		}
		l.add(Finding{Severity: SeverityError, Rule: "load", Pos: c.pos,
			Message: fmt.Sprintf("%s has %s, but the other files of %s are package %s: a directory holds one CUE package", filepath.Base(c.pos.File), what, l.rel(dir), main),
			Hint:    fmt.Sprintf("write package %s here, or move the file to a directory of its own", main)})
	}
	if len(clauses) == 0 || count[main] == len(clauses) {
		l.add(Finding{Severity: SeverityError, Rule: "load", Message: msg, Hint: "keep one CUE package per directory", Pos: Position{File: l.rel(dir)}})
	}
}

type packageClause struct {
	name string
	pos  Position
}

// packageClauses reads the package clause of every file.
func (l *loader) packageClauses(dir string, files []string) []packageClause {
	var out []packageClause
	for _, name := range files {
		path := filepath.Join(dir, name)
		f, err := parser.ParseFile(path, nil, parser.PackageClauseOnly)
		if err != nil {
			continue
		}
		c := packageClause{name: f.PackageName(), pos: Position{File: l.rel(path), Line: 1, Column: 1}}
		for _, d := range f.Decls {
			if pkg, ok := d.(*ast.Package); ok {
				c.pos = l.position(pkg.Name.Pos())
			}
		}
		out = append(out, c)
	}
	return out
}
