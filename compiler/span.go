package compiler

import (
	"os"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/scanner"
	"cuelang.org/go/cue/token"
)

// Findings carry where the offending text ends, so that -o json gives
// ranges an editor can underline: the smallest syntax node that starts at
// the finding's position (a label, a value), or, in a file that does not
// parse, the token there.

// spans maps a file's byte offsets to the end of the smallest node that
// starts there.
type spans map[int]token.Pos

// noteFiles remembers the parsed files of a package, by the name findings
// use, for endOf.
func (l *loader) noteFiles(files []*ast.File) {
	for _, f := range files {
		l.parsed[l.rel(f.Filename)] = f
	}
}

// endOf returns the end of the text that starts at p, or a zero Position.
func (l *loader) endOf(p Position) Position {
	if p.Line == 0 {
		return Position{}
	}
	idx, ok := l.spans[p.File]
	if !ok {
		if f := l.parsed[p.File]; f != nil {
			idx = nodeSpans(f)
		} else {
			idx = tokenSpans(p.File)
		}
		l.spans[p.File] = idx
	}
	end, ok := idx[p.Offset]
	if !ok || !end.IsValid() {
		return Position{}
	}
	return Position{File: p.File, Line: end.Line(), Column: end.Column(), Offset: end.Offset()}
}

func nodeSpans(f *ast.File) spans {
	idx := spans{}
	ast.Walk(f, func(n ast.Node) bool {
		start, end := n.Pos(), n.End()
		if !start.IsValid() || !end.IsValid() || end.Offset() <= start.Offset() {
			return true
		}
		if prev, ok := idx[start.Offset()]; !ok || end.Offset() < prev.Offset() {
			idx[start.Offset()] = end
		}
		return true
	}, nil)
	return idx
}

// tokenSpans scans a file the parser refused.
func tokenSpans(name string) spans {
	idx := spans{}
	src, err := os.ReadFile(name)
	if err != nil {
		return idx
	}
	file := token.NewFile(name, -1, len(src))
	var s scanner.Scanner
	s.Init(file, src, func(token.Pos, string, []any) {}, 0)
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			return idx
		}
		n := len(lit)
		if n == 0 {
			n = len(tok.String())
		}
		if end := pos.Offset() + n; end <= len(src) {
			idx[pos.Offset()] = file.Pos(end, token.NoRelPos)
		}
	}
}
