// Package atomicfile replaces a file so that a reader sees the old content
// or the new one, never a mix: the data goes to a temporary file beside the
// target, which is then renamed over it. Plans (read by agents watching the
// directory) and the management table (read by load distributors) need
// exactly that.
//
// There is no fsync: after a power cut the newest content may be lost, but
// never half written. Both writers regenerate their files.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, with permissions perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
