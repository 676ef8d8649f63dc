// Package schema holds the CUE definitions of an mwgc repository, embedded
// so that the binary and `cue vet` use the same text.
package schema

import _ "embed"

// Filename is the name the schema carries in positions, so that findings
// can tell schema positions from the user's.
const Filename = "mwgc-schema.cue"

// Source is the CUE text of the schema (package mwgc, definition #Repo).
//
//go:embed mwgc.cue
var Source string
