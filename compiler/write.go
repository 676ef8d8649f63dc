package compiler

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"

	"github.com/mwgc/mwgc/runtime/plan"
)

// ManifestName is the file in the output directory that lists the plans
// mwgc wrote, so that a later compile removes the plans of vanished nodes
// and never touches files it did not write.
const ManifestName = ".mwgc-plans"

// WriteStats says what WritePlans changed.
type WriteStats struct {
	Written, Unchanged, Removed int
}

// WritePlans writes DIR/<cluster>/<node>.json for every plan. Each file is
// replaced atomically (write beside, then rename) and only when its content
// changed; plans listed in the previous manifest that are no longer
// produced are removed.
func WritePlans(dir string, plans []NodePlan) (WriteStats, error) {
	var st WriteStats
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, err
	}
	previous, err := readManifest(dir)
	if err != nil {
		return st, err
	}
	// Encode first (cheap), then write in parallel: on virtual disks each
	// file creation waits on the host, and the waits overlap.
	var errs *multierror.Error
	names := make([]string, len(plans))
	contents := make([][]byte, len(plans))
	for i, np := range plans {
		b, err := plan.Encode(np.Plan)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s/%s: %w", np.Cluster, np.Node, err))
			continue
		}
		names[i] = np.Cluster + "/" + np.Node + ".json"
		contents[i] = b
	}
	if errs.ErrorOrNil() != nil {
		return st, errs
	}
	// Create the cluster directories once.
	made := map[string]bool{}
	for _, np := range plans {
		if !made[np.Cluster] {
			made[np.Cluster] = true
			if err := os.MkdirAll(filepath.Join(dir, np.Cluster), 0o755); err != nil {
				return st, err
			}
		}
	}
	changed := make([]bool, len(plans))
	werrs := make([]error, len(plans))
	var wg sync.WaitGroup
	next := make(chan int)
	for range writeWorkers {
		wg.Go(func() {
			for i := range next {
				changed[i], werrs[i] = writeAtomic(filepath.Join(dir, filepath.FromSlash(names[i])), contents[i])
			}
		})
	}
	for i := range plans {
		next <- i
	}
	close(next)
	wg.Wait()
	for i := range plans {
		switch {
		case werrs[i] != nil:
			errs = multierror.Append(errs, werrs[i])
		case changed[i]:
			st.Written++
		default:
			st.Unchanged++
		}
	}
	if errs.ErrorOrNil() != nil {
		// Keep the old manifest: nothing is removed after a failed write.
		return st, errs
	}
	for _, old := range previous {
		if slices.Contains(names, old) {
			continue
		}
		path := filepath.Join(dir, filepath.FromSlash(old))
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			errs = multierror.Append(errs, err)
			continue
		}
		st.Removed++
		// Remove the cluster directory when it became empty; a directory
		// with other files in it stays.
		_ = os.Remove(filepath.Dir(path))
	}
	slices.Sort(names)
	manifest := "# written by mwgc compile; plans listed here are removed when their node disappears\n" + strings.Join(names, "\n") + "\n"
	if _, err := writeAtomic(filepath.Join(dir, ManifestName), []byte(manifest)); err != nil {
		errs = multierror.Append(errs, err)
	}
	return st, errs.ErrorOrNil()
}

func readManifest(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Only plain cluster/node.json entries: a manifest edited to
		// point elsewhere must not make mwgc delete other files.
		parts := strings.Split(line, "/")
		if len(parts) != 2 || parts[0] == ".." || parts[0] == "." || parts[0] == "" || !strings.HasSuffix(parts[1], ".json") {
			continue
		}
		out = append(out, line)
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
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = nil // no fsync: see README (known limits)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return false, err
	}
	return true, nil
}
