// Command vetbench times `mwgc validate` and `mwgc compile` against
// `cue vet` of the same files with the exported schema, on generated
// repositories of 100, 1,000 and 10,000 nodes, and prints a table.
//
//	go run ./compiler/internal/vetbench [-sizes 100,1000,10000] [-runs 3]
//
// Run it from the repository root. It builds bin/mwgc and, when bin/cue is
// missing, installs cue v0.17.1 into bin/ with `go install`.
//
// The repositories come from package benchrepo: clusters of 10 nodes, one
// file and one segment per cluster.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mwgc/mwgc/compiler/internal/benchrepo"
)

const cueVersion = "v0.17.1"

func main() {
	sizes := flag.String("sizes", "100,1000,10000", "comma-separated node counts")
	runs := flag.Int("runs", 3, "runs per command; the fastest counts")
	keep := flag.Bool("keep", false, "keep the generated repositories")
	flag.Parse()
	if err := run(*sizes, *runs, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "vetbench:", err)
		os.Exit(1)
	}
}

func run(sizeList string, runs int, keep bool) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	bin := filepath.Join(root, "bin")
	mwgc := filepath.Join(bin, "mwgc")
	if err := command(root, nil, "go", "build", "-o", bin+string(filepath.Separator), "./cmd/mwgc").Run(); err != nil {
		return fmt.Errorf("go build ./cmd/mwgc (run from the repository root): %w", err)
	}
	cue := filepath.Join(bin, "cue")
	if _, err := os.Stat(cue); err != nil {
		fmt.Fprintf(os.Stderr, "installing cue %s into %s\n", cueVersion, bin)
		if err := command(root, []string{"GOBIN=" + bin}, "go", "install", "cuelang.org/go/cmd/cue@"+cueVersion).Run(); err != nil {
			return fmt.Errorf("installing cue: %w", err)
		}
	}
	schema, err := exec.Command(mwgc, "schema").Output()
	if err != nil {
		return fmt.Errorf("mwgc schema: %w", err)
	}

	tmp, err := os.MkdirTemp("", "vetbench")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "repositories kept in", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	defer tw.Flush()
	fmt.Fprintln(tw, "nodes\tfiles\tcue vet\tmwgc validate\tratio\tcompile (new dir)\tratio\tcompile (unchanged)\tratio\t")
	for _, s := range strings.Split(sizeList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < benchrepo.NodesPerCluster {
			return fmt.Errorf("bad size %q", s)
		}
		repo := filepath.Join(tmp, fmt.Sprintf("repo-%d", n))
		vet := filepath.Join(tmp, fmt.Sprintf("vet-%d", n))
		out := filepath.Join(tmp, fmt.Sprintf("plans-%d", n))
		files, err := generate(repo, vet, n, schema)
		if err != nil {
			return err
		}
		// Interleaved, so that a change in the machine's load (it is
		// shared) hits both alike.
		tVet, tVal, err := fastestPair(runs,
			func() *exec.Cmd { return command(vet, nil, cue, "vet", "-c", ".") },
			func() *exec.Cmd { return command(tmp, nil, mwgc, "validate", repo) })
		if err != nil {
			return err
		}
		tCmp, err := fastest(runs, func() *exec.Cmd {
			os.RemoveAll(out) // time a full write, not the unchanged case
			return command(tmp, nil, mwgc, "compile", "-o", out, repo)
		})
		if err != nil {
			return fmt.Errorf("mwgc compile: %w", err)
		}
		// Again into the same directory: every plan is unchanged, so this
		// is compile without the cost of creating files.
		tSame, err := fastest(runs, func() *exec.Cmd { return command(tmp, nil, mwgc, "compile", "-o", out, repo) })
		if err != nil {
			return fmt.Errorf("mwgc compile: %w", err)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.2fx\t%s\t%.2fx\t%s\t%.2fx\t\n", n, files, secs(tVet), secs(tVal), ratio(tVal, tVet),
			secs(tCmp), ratio(tCmp, tVet), secs(tSame), ratio(tSame, tVet))
	}
	tw.Flush()
	fmt.Println("ratio = mwgc time / cue vet time (fastest of", runs, "runs each; goal <= 1.20x, 10,000 nodes < 1 s)")
	fmt.Println("compile (new dir) creates one file per node; compile (unchanged) rewrites nothing")
	return nil
}

func command(dir string, env []string, name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	c.Stderr = os.Stderr
	return c
}

// fastest runs the command runs times and returns the shortest wall time;
// it fails when the command fails, so a broken repository cannot pass for
// a fast one.
func fastest(runs int, mk func() *exec.Cmd) (time.Duration, error) {
	var times []time.Duration
	for range runs {
		c := mk()
		var out strings.Builder
		c.Stdout = &out
		start := time.Now()
		if err := c.Run(); err != nil {
			return 0, fmt.Errorf("%v: %s", err, out.String())
		}
		times = append(times, time.Since(start))
	}
	return slices.Min(times), nil
}

// fastestPair runs a and b alternately, runs times each, and returns the
// shortest wall time of each.
func fastestPair(runs int, a, b func() *exec.Cmd) (time.Duration, time.Duration, error) {
	var ta, tb time.Duration
	for range runs {
		x, err := fastest(1, a)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", a().Args[0], err)
		}
		y, err := fastest(1, b)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", b().Args[0], err)
		}
		if ta == 0 || x < ta {
			ta = x
		}
		if tb == 0 || y < tb {
			tb = y
		}
	}
	return ta, tb, nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// generate writes the repository into repo, and the same files plus the
// schema and a file that applies #Repo into vet.
func generate(repo, vet string, n int, schema []byte) (int, error) {
	files, err := benchrepo.Generate(repo, n)
	if err != nil {
		return 0, err
	}
	if _, err := benchrepo.Generate(vet, n); err != nil {
		return 0, err
	}
	// cue vet needs the schema in the same package, and #Repo applied to
	// the package's top level.
	s := strings.Replace(string(schema), "\npackage mwgc\n", "\npackage clusters\n", 1)
	if err := os.WriteFile(filepath.Join(vet, "mwgc_schema.cue"), []byte(s), 0o644); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(vet, "mwgc_vet.cue"), []byte("package clusters\n\n#Repo\n"), 0o644); err != nil {
		return 0, err
	}
	return files, nil
}
