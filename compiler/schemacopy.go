package compiler

import (
	"fmt"
	"path/filepath"
	"slices"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/token"
)

// dropSchemaCopies leaves out of a package the helper files of the cue vet
// recipe that docs/schema.md used to give: a copy of the schema (it defines
// #Repo) and a file that only embeds #Repo. Left in, they made every schema
// error a conflict positioned inside the copy; and a stale copy would
// judge the package by old rules. Each is reported once.
func (l *loader) dropSchemaCopies(bi *build.Instance) {
	bi.Files = slices.DeleteFunc(bi.Files, func(f *ast.File) bool {
		pos, what := schemaCopy(f)
		if !pos.IsValid() {
			return false
		}
		l.add(Finding{Severity: SeverityWarning, Rule: "schema-copy", Pos: l.position(pos),
			Message: fmt.Sprintf("%s %s; mwgc validate leaves the file out and applies its own schema", filepath.Base(f.Filename), what),
			Hint:    "remove the file; docs/schema.md shows how to run cue vet without copying the schema into the package"})
		return true
	})
}

// schemaCopy returns where f defines #Repo, or where it embeds #Repo when
// that is all it does; NoPos otherwise.
func schemaCopy(f *ast.File) (token.Pos, string) {
	var embed token.Pos
	other := false
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.Package, *ast.CommentGroup, *ast.Attribute, *ast.ImportDecl:
		case *ast.Field:
			if id, ok := d.Label.(*ast.Ident); ok && id.Name == "#Repo" {
				return id.Pos(), "defines #Repo: it is a copy of the mwgc schema"
			}
			other = true
		case *ast.EmbedDecl:
			if id, ok := d.Expr.(*ast.Ident); ok && id.Name == "#Repo" {
				embed = id.Pos()
			} else {
				other = true
			}
		default:
			other = true
		}
	}
	if embed.IsValid() && !other {
		return embed, "only applies #Repo to the package (a helper of the former cue vet recipe)"
	}
	return token.NoPos, ""
}
