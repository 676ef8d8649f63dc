package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mwgc/mwgc/compiler"
	"github.com/mwgc/mwgc/compiler/graph"
	"github.com/mwgc/mwgc/compiler/plandiff"
	"github.com/mwgc/mwgc/internal/gitbase"
)

func init() {
	commands["plan"] = &command{
		synopsis: "mwgc plan [--base GITREF|DIR] [-o text|json|markdown] [PATH ...]",
		about: `Compiles PATH (default ".") and the same paths in the base — a git commit
(default HEAD; exported with git archive, the repository is not touched)
or a directory holding a checkout of the base — and prints per cluster and
node what changes and what it does on the wire: who is Active before and
after, which VIPs move, roll-out order, the digests to watch on the
cluster page. A path the base lacks counts as an empty repository.
-o markdown is for a pull-request comment. Exit status as terraform plan
-detailed-exitcode: 0 no changes, 1 error (also a bad flag, or either
side not valid), 2 changes.`,
		setup:     planFlags,
		usageExit: 1,
	}
	commands["graph"] = &command{
		synopsis: "mwgc graph [-o mermaid|markdown|dot] [PATH ...]",
		about: `Draws the topology of PATH (default "."): segments (protected, waived or
not), nodes, VRRP groups with their VIPs, external peers, the management
protocol. mermaid renders in GitHub and GitLab pull requests and issues
(markdown wraps it in a fence for a comment); dot is for Graphviz
(mwgc graph -o dot | dot -Tsvg > topology.svg). Exit status 0, 1 when the
repository has errors, 2 for usage or I/O errors.`,
		setup: graphFlags,
	}
}

func planFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) (int, error) {
	base := fs.String("base", "HEAD", "the base: a git `GITREF` of the repository around the working directory, or a DIR holding a checkout of the base")
	format := fs.String("o", "text", "output `format`: text, json or markdown (a pull-request comment)")
	return func(paths []string, stdout, stderr io.Writer) (int, error) {
		write := map[string]func(io.Writer, *plandiff.Report) error{
			"text": plandiff.WriteText, "json": plandiff.WriteJSON, "markdown": plandiff.WriteMarkdown,
		}[*format]
		if write == nil {
			return 1, fmt.Errorf("%w: -o %q: want text, json or markdown", errUsage, *format)
		}
		wd, err := os.Getwd()
		if err != nil {
			return 1, err
		}
		b, err := gitbase.Resolve(context.Background(), wd, *base, paths)
		if err != nil {
			return 1, err
		}
		defer b.Close()
		for _, m := range b.Missing {
			fmt.Fprintf(stderr, "mwgc plan: %s does not exist in %s: compared with an empty repository\n", m, b.Label)
		}
		head, err := snapshot(paths, "", stderr)
		if err != nil {
			return 1, err
		}
		var before *compiler.Snapshot
		if len(b.Paths) > 0 {
			if before, err = snapshot(b.Paths, b.Label, stderr); err != nil {
				return 1, err
			}
		}
		r := plandiff.Diff(before, head)
		r.Base, r.Head = b.Label, headLabel(paths)
		if err := write(stdout, r); err != nil {
			return 1, err
		}
		if r.HasChanges() {
			return 2, nil
		}
		return 0, nil
	}
}

func headLabel(paths []string) string {
	if len(paths) == 0 {
		return "working tree"
	}
	return "working tree (" + strings.Join(paths, " ") + ")"
}

// snapshot compiles paths; when they have errors it prints the findings
// and says which side they are from (side "" is the change itself).
func snapshot(paths []string, side string, stderr io.Writer) (*compiler.Snapshot, error) {
	res, err := compiler.Load(paths)
	if err != nil {
		return nil, err
	}
	s, err := res.Snapshot()
	if err == nil {
		for _, f := range res.Findings {
			if side == "" {
				fmt.Fprintln(stderr, f) // warnings and notes of the change deserve to be seen
			}
		}
		return s, nil
	}
	compiler.WriteText(stderr, res.Findings)
	if side == "" {
		return nil, fmt.Errorf("the change does not validate; nothing to compare")
	}
	return nil, fmt.Errorf("the base %s does not validate (findings above); compare with another base", side)
}

func graphFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) (int, error) {
	format := fs.String("o", "mermaid", "output `format`: mermaid, markdown (mermaid in a fence) or dot")
	return func(paths []string, stdout, stderr io.Writer) (int, error) {
		write := map[string]func(io.Writer, *compiler.Snapshot) error{
			"mermaid": graph.WriteMermaid, "markdown": graph.WriteMarkdown, "dot": graph.WriteDOT,
		}[*format]
		if write == nil {
			return 2, fmt.Errorf("%w: -o %q: want mermaid, markdown or dot", errUsage, *format)
		}
		res, err := compiler.Load(paths)
		if err != nil {
			return 2, err
		}
		s, err := res.Snapshot()
		if err != nil {
			compiler.WriteText(stderr, res.Findings)
			return 1, fmt.Errorf("the repository has errors; nothing drawn")
		}
		if err := write(stdout, s); err != nil {
			return 2, err
		}
		return 0, nil
	}
}
