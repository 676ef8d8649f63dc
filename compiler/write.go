package compiler

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
}

// manifestEntry records a plan file as mwgc left it. When the file still
// has this size and modification time and the new content has this hash,
// it is unchanged without reading it (as git's index does).
type manifestEntry struct {
	sum     string // sha256 of the file's bytes, hex
	size    int64
	modTime int64 // UnixNano
}

// WritePlans writes DIR/<cluster>/<node>.json for every plan. Each file is
// replaced atomically (write beside, then rename) and only when its content
// changed; plans listed in the previous manifest that are no longer
// produced are removed, and nothing else.
func WritePlans(dir string, plans []NodePlan) (WriteStats, error) {
	var st WriteStats
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, err
	}
	previous, err := readManifest(dir)
	if err != nil {
		return st, err
	}
	names := make([]string, len(plans))
	made := map[string]bool{}
	for i, np := range plans {
		names[i] = np.Cluster + "/" + np.Node + ".json"
		if !made[np.Cluster] {
			made[np.Cluster] = true
			if err := os.MkdirAll(filepath.Join(dir, np.Cluster), 0o755); err != nil {
				return st, err
			}
		}
	}

	// Encode and write in parallel: on virtual disks each file creation
	// waits on the host, and the waits overlap.
	entries := make([]manifestEntry, len(plans))
	changed := make([]bool, len(plans))
	werrs := make([]error, len(plans))
	var wg sync.WaitGroup
	next := make(chan int)
	for range writeWorkers {
		wg.Go(func() {
			for i := range next {
				entries[i], changed[i], werrs[i] = writePlan(dir, names[i], plans[i].Plan, previous[names[i]])
			}
		})
	}
	for i := range plans {
		next <- i
	}
	close(next)
	wg.Wait()

	var errs *multierror.Error
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
	current := map[string]manifestEntry{}
	for i, n := range names {
		current[n] = entries[i]
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
		// Remove the cluster directory when it became empty; a directory
		// with other files in it stays.
		_ = os.Remove(filepath.Dir(path))
	}
	var b strings.Builder
	b.WriteString("# written by mwgc compile: plans listed here are removed when their node disappears\n")
	b.WriteString("# path sha256 size mtime-ns\n")
	for _, n := range sortedKeys(current) {
		e := current[n]
		fmt.Fprintf(&b, "%s %s %d %d\n", n, e.sum, e.size, e.modTime)
	}
	if _, err := writeAtomic(filepath.Join(dir, ManifestName), []byte(b.String())); err != nil {
		errs = multierror.Append(errs, err)
	}
	return st, errs.ErrorOrNil()
}

// writePlan encodes p and writes it to dir/name unless the file already
// holds those bytes.
func writePlan(dir, name string, p *plan.Plan, prev manifestEntry) (manifestEntry, bool, error) {
	data, err := plan.Encode(p)
	if err != nil {
		return manifestEntry{}, false, fmt.Errorf("%s: %w", name, err)
	}
	sum := sha256.Sum256(data)
	e := manifestEntry{sum: hex.EncodeToString(sum[:]), size: int64(len(data))}
	path := filepath.Join(dir, filepath.FromSlash(name))
	if prev.sum == e.sum {
		if fi, err := os.Stat(path); err == nil && fi.Size() == prev.size && fi.ModTime().UnixNano() == prev.modTime {
			return prev, false, nil
		}
	}
	changed, err := writeAtomic(path, data)
	if err != nil {
		return manifestEntry{}, false, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return manifestEntry{}, false, err
	}
	e.modTime = fi.ModTime().UnixNano()
	return e, changed, nil
}

// readManifest returns the plans the previous compile wrote. Lines that
// are not a plain cluster/node.json entry are ignored: a manifest edited to
// point elsewhere must not make mwgc delete other files.
func readManifest(dir string) (map[string]manifestEntry, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]manifestEntry{}
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
		var e manifestEntry
		if len(fields) == 4 {
			// A damaged record only costs a read of the file.
			e.sum = fields[1]
			e.size, _ = strconv.ParseInt(fields[2], 10, 64)
			e.modTime, _ = strconv.ParseInt(fields[3], 10, 64)
		}
		out[name] = e
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
