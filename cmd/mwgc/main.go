// Command mwgc validates mwgc cluster definitions written in CUE and
// compiles them into one plan per node for mwgc-agent.
//
//	mwgc validate [-o text|json|github] [PATH ...]
//	mwgc compile -o DIR [PATH ...]
//	mwgc schema
//	mwgc version
//	mwgc plan [--base GITREF|DIR] [-o text|json|markdown] [PATH ...]
//	mwgc graph [-o mermaid|markdown|dot] [PATH ...]
//	mwgc status [-o text|json] [ADDR]
//	mwgc help [COMMAND]
//
// Flags may come before or after the paths. Exit status: 0 valid (warnings
// and notes allowed), 1 error findings, 2 usage or I/O errors.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/mwgc/mwgc/compiler"
	"github.com/mwgc/mwgc/runtime/buildinfo"
	"github.com/mwgc/mwgc/schema"
)

const usage = `usage: mwgc COMMAND [flags] [PATH ...]

commands:
  validate [-o text|json|github] [PATH ...]   check cluster definitions
  compile -o DIR [PATH ...]                   write DIR/<cluster>/<node>.json
  schema                                      print the CUE schema
  version                                     print which build this is
  plan [--base GITREF|DIR] [-o FORMAT] [PATH ...]
                                              what a change does on the wire (exit 2: changes)
  graph [-o mermaid|markdown|dot] [PATH ...]  draw the topology
  status [-o text|json] [ADDR]                the cluster as an agent sees it (exit 1: alarms)

PATH is a directory (every CUE package below it) or .cue files; default ".".
Flags may come before or after the paths; -- ends the flags.
Exit status: 0 valid, 1 error findings, 2 usage or I/O error.
Run "mwgc help COMMAND" for a command's flags (or mwgc COMMAND --help).
`

// command is one subcommand: its usage line and description for help,
// its flags, and what it does with the positional arguments.
type command struct {
	synopsis, about string
	// setup defines the flags on fs and returns what runs the command.
	setup func(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) (int, error)
	// usageExit is the exit status of a bad flag when not 2 (mwgc plan
	// exits 2 for "changes present", as terraform plan -detailed-exitcode).
	usageExit int
}

var commands = map[string]*command{
	"validate": {
		synopsis: "mwgc validate [-o text|json|github] [PATH ...]",
		about: `Checks every CUE package at PATH against the schema and the rules
(compiler/README.md) and prints every finding with its position, rule id
and hint. Exit status 0 when there is no error (warnings and notes
allowed), 1 with errors, 2 for usage or I/O errors.`,
		setup: validateFlags,
	},
	"compile": {
		synopsis: "mwgc compile -o DIR [PATH ...]",
		about: `Validates like mwgc validate, then writes DIR/<cluster>/<node>.json, one
plan per node, and prints each plan's path and digest (the digest
mwgc-agent --check and /status show). Unchanged plans are not rewritten;
plans of vanished nodes are removed; DIR/.mwgc-plans lists the plans with
their digests. Refuses (exit 1, nothing written) on any error finding.`,
		setup: compileFlags,
	},
	"schema": {
		synopsis: "mwgc schema",
		about:    "Prints the CUE schema mwgc validate applies (docs/schema.md).",
		setup: func(*flag.FlagSet) func([]string, io.Writer, io.Writer) (int, error) {
			return noArgs("schema", func(stdout io.Writer) error {
				_, err := io.WriteString(stdout, schema.Source)
				return err
			})
		},
	},
	"version": {
		synopsis: "mwgc version",
		about:    "Prints the version, VCS revision and Go release of this build.",
		setup: func(*flag.FlagSet) func([]string, io.Writer, io.Writer) (int, error) {
			return noArgs("version", printVersion)
		},
	},
}

func main() {
	// A short-lived batch run over a large evaluated tree: collecting less
	// often saves about a tenth of the time for a few percent more memory.
	// GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks errors that print the command's usage text.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return help(args, stdout, stderr)
	case "-version", "--version":
		printVersion(stdout)
		return 0
	}
	cmd := commands[name]
	if cmd == nil {
		fmt.Fprintf(stderr, "mwgc: unknown command %q\n\n%s", name, usage)
		return 2
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed once, below
	exec := cmd.setup(fs)
	positional, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, cmd.usage(fs))
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "mwgc %s: %v\n\n%s", name, err, cmd.usage(fs))
		if cmd.usageExit != 0 {
			return cmd.usageExit
		}
		return 2
	}
	code, err := exec(positional, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mwgc %s: %v\n", name, err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(stderr, "\n"+cmd.usage(fs))
		}
	}
	return code
}

// help prints the general usage, or one command's.
func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd := commands[args[0]]
	if cmd == nil || len(args) > 1 {
		fmt.Fprintf(stderr, "mwgc help: unknown command %q\n\n%s", strings.Join(args, " "), usage)
		return 2
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	cmd.setup(fs)
	fmt.Fprint(stdout, cmd.usage(fs))
	return 0
}

func (c *command) usage(fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n%s\n", c.synopsis, c.about)
	has := false
	fs.VisitAll(func(*flag.Flag) { has = true })
	if has {
		b.WriteString("\nflags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return b.String()
}

// parseInterspersed parses flags wherever they stand among the
// positional arguments, as operators expect from their other tools; "--"
// ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func noArgs(name string, do func(io.Writer) error) func([]string, io.Writer, io.Writer) (int, error) {
	return func(args []string, stdout, _ io.Writer) (int, error) {
		if len(args) > 0 {
			return 2, fmt.Errorf("%w: %s takes no arguments", errUsage, name)
		}
		if err := do(stdout); err != nil {
			return 2, err
		}
		return 0, nil
	}
}

func printVersion(stdout io.Writer) error {
	_, err := fmt.Fprintln(stdout, buildinfo.Read().String("mwgc"))
	return err
}

func validateFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) (int, error) {
	format := fs.String("o", "text", "output `format`: text, json (terraform validate -json) or github (workflow annotations)")
	return func(paths []string, stdout, _ io.Writer) (int, error) {
		write := map[string]func(io.Writer, []compiler.Finding) error{
			"text": compiler.WriteText, "json": compiler.WriteJSON, "github": compiler.WriteGitHub,
		}[*format]
		if write == nil {
			return 2, fmt.Errorf("%w: -o %q: want text, json or github", errUsage, *format)
		}
		res, err := compiler.Load(paths)
		if err != nil {
			return 2, err
		}
		if err := write(stdout, res.Findings); err != nil {
			return 2, err
		}
		if compiler.HasErrors(res.Findings) {
			return 1, nil
		}
		return 0, nil
	}
}

func compileFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) (int, error) {
	out := fs.String("o", "", "output `DIR` for the plans (required)")
	return func(paths []string, stdout, stderr io.Writer) (int, error) {
		if *out == "" {
			return 2, fmt.Errorf("%w: compile needs -o DIR", errUsage)
		}
		res, err := compiler.Load(paths)
		if err != nil {
			return 2, err
		}
		if compiler.HasErrors(res.Findings) {
			// Refuse, and say why in the same words as validate.
			compiler.WriteText(stderr, res.Findings)
			fmt.Fprintln(stderr, "mwgc: no plans written")
			return 1, nil
		}
		// Warnings and notes still deserve to be seen.
		for _, f := range res.Findings {
			fmt.Fprintln(stderr, f)
		}
		plans, err := res.Plans()
		if err != nil {
			return 2, err
		}
		st, err := compiler.WritePlans(*out, plans)
		if err != nil {
			return 2, err
		}
		var b strings.Builder
		for _, pf := range st.Plans {
			state := "unchanged"
			if pf.Written {
				state = "written"
			}
			fmt.Fprintf(&b, "%s %s %s\n", pf.Path, pf.Digest, state)
		}
		for _, path := range st.RemovedPaths {
			fmt.Fprintf(&b, "%s removed\n", path)
		}
		fmt.Fprintf(&b, "%d plans in %s: %d written, %d unchanged, %d removed\n", len(plans), *out, st.Written, st.Unchanged, st.Removed)
		_, err = io.WriteString(stdout, b.String())
		return 0, err
	}
}
