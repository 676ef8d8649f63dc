package compiler

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"
	"github.com/mwgc/mwgc/runtime/atomicfile"
	"github.com/mwgc/mwgc/runtime/plan"
)

// ManifestName is the file in the output directory that lists the plans
// mwgc wrote, so that a later compile removes the plans of vanished nodes
// and never touches files it did not write.
const ManifestName = ".mwgc-plans"

// WriteStats says what WritePlans changed.
type WriteStats struct {
	Written, Unchanged, Removed int
	// Plans lists every plan in the order given, Removed the paths of the
	// plans removed, sorted; paths are relative to the directory.
	Plans        []PlanFile
	RemovedPaths []string
}

// PlanFile is one plan as WritePlans left it.
type PlanFile struct {
	Path    string // <cluster>/<node>.json
	Digest  string // the plan's digest field: what the agent shows
	Written bool   // false when the file already held these bytes
}

// WritePlans writes DIR/<cluster>/<node>.json for every plan. Each file is
// replaced atomically (write beside, then rename) and only when its content
// changed; plans listed in the previous manifest that are no longer
// produced are removed, and nothing else. The manifest lists each plan with
// its digest and nothing else, so identical input gives a byte-identical
// directory.
func WritePlans(dir string, plans []NodePlan) (WriteStats, error) {
	var st WriteStats
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, err
	}
	previous, err := readManifest(dir)
	if err != nil {
		return st, err
	}
	st.Plans = make([]PlanFile, len(plans))
	made := map[string]bool{}
	for i, np := range plans {
		st.Plans[i].Path = np.Cluster + "/" + np.Node + ".json"
		if !made[np.Cluster] {
			made[np.Cluster] = true
			if err := os.MkdirAll(filepath.Join(dir, np.Cluster), 0o755); err != nil {
				return st, err
			}
		}
	}

	// Encode and write in parallel: on virtual disks each file creation
	// waits on the host, and the waits overlap.
	werrs := make([]error, len(plans))
	var wg sync.WaitGroup
	next := make(chan int)
	for range writeWorkers {
		wg.Go(func() {
			for i := range next {
				pf := &st.Plans[i]
				pf.Digest, pf.Written, werrs[i] = writePlan(dir, pf.Path, plans[i].Plan)
			}
		})
	}
	for i := range plans {
		next <- i
	}
	close(next)
	wg.Wait()

	var errs *multierror.Error
	current := map[string]string{}
	for i, pf := range st.Plans {
		switch {
		case werrs[i] != nil:
			errs = multierror.Append(errs, werrs[i])
		case pf.Written:
			st.Written++
		default:
			st.Unchanged++
		}
		current[pf.Path] = pf.Digest
	}
	if errs.ErrorOrNil() != nil {
		// Keep the old manifest: nothing is removed after a failed write.
		return st, errs
	}
	for _, old := range sortedKeys(previous) {
		if _, ok := current[old]; ok {
			continue
		}
		path := filepath.Join(dir, filepath.FromSlash(old))
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			errs = multierror.Append(errs, err)
			continue
		}
		st.Removed++
		st.RemovedPaths = append(st.RemovedPaths, old)
		// Remove the cluster directory when it became empty; a directory
		// with other files in it stays.
		_ = os.Remove(filepath.Dir(path))
	}
	var b strings.Builder
	b.WriteString("# written by mwgc compile: plans listed here are removed when their node disappears\n")
	b.WriteString("# path digest\n")
	for _, n := range sortedKeys(current) {
		fmt.Fprintf(&b, "%s %s\n", n, current[n])
	}
	if _, err := writeAtomic(filepath.Join(dir, ManifestName), []byte(b.String())); err != nil {
		errs = multierror.Append(errs, err)
	}
	return st, errs.ErrorOrNil()
}

// writePlan encodes p and writes it to dir/name unless the file already
// holds those bytes. It returns the plan's digest.
func writePlan(dir, name string, p *plan.Plan) (string, bool, error) {
	data, digest, err := plan.EncodeDigest(p)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", name, err)
	}
	changed, err := writeAtomic(filepath.Join(dir, filepath.FromSlash(name)), data)
	return digest, changed, err
}

// readManifest returns the plans the previous compile wrote (with their
// digests; a manifest of an older mwgc has more columns, which are
// ignored). Lines that are not a plain cluster/node.json entry are
// ignored: a manifest edited to point elsewhere must not make mwgc delete
// other files.
func readManifest(dir string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		name := fields[0]
		parts := strings.Split(name, "/")
		if len(parts) != 2 || parts[0] == ".." || parts[0] == "." || parts[0] == "" || !strings.HasSuffix(parts[1], ".json") || strings.ContainsRune(parts[1], '\\') {
			continue
		}
		out[name] = ""
		if len(fields) > 1 {
			out[name] = fields[1]
		}
	}
	return out, sc.Err()
}

// writeWorkers is how many plans are written at once.
const writeWorkers = 8

// writeAtomic replaces path with data unless it already holds exactly
// data. It reports whether it wrote.
func writeAtomic(path string, data []byte) (bool, error) {
	// Stat first: a missing file is the common case on a first compile,
	// and a failed open costs more than a stat.
	if fi, err := os.Stat(path); err == nil && fi.Size() == int64(len(data)) {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			return false, nil
		}
	}
	// No fsync (see atomicfile): a lost plan is regenerated by the next
	// compile (README, known limits).
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return false, err
	}
	return true, nil
}
