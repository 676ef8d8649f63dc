// Package gitbase finds the base side of `mwgc plan`: the same paths as in
// the working tree, read either in another directory or at a git commit.
// A commit's files are exported with `git archive` into a temporary
// directory, so the repository, its index and its worktrees are never
// touched.
package gitbase

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Base is the base side, ready for compiler.Load.
type Base struct {
	// Label names the base for people: the ref as given, or the directory.
	Label string
	// Paths are the given paths as they exist in the base; empty when none
	// exists there (a repository before its first cluster): the base is
	// then an empty repository.
	Paths []string
	// Missing lists the given paths the base does not have.
	Missing []string
	tmp     string
}

// Close removes the temporary export, if any.
func (b *Base) Close() error {
	if b.tmp == "" {
		return nil
	}
	return os.RemoveAll(b.tmp)
}

// Resolve finds base for paths (relative to the working directory wd;
// default "."): an existing directory is a checkout of the base, in which
// the same relative paths are read; anything else must name a git commit
// of the repository around wd.
func Resolve(ctx context.Context, wd, base string, paths []string) (*Base, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	dir := base
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(wd, base)
	}
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return fromDir(base, dir, paths)
	}
	return fromGit(ctx, wd, base, paths)
}

func fromDir(label, dir string, paths []string) (*Base, error) {
	b := &Base{Label: label}
	for _, p := range paths {
		if filepath.IsAbs(p) {
			return nil, fmt.Errorf("with a base directory, paths must be relative (they are read in both): %s", p)
		}
		full := filepath.Join(dir, p)
		if _, err := os.Stat(full); err != nil {
			b.Missing = append(b.Missing, p)
			continue
		}
		b.Paths = append(b.Paths, full)
	}
	return b, nil
}

// git runs git in dir and returns its standard output.
func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
	}
	return stdout.Bytes(), nil
}

func fromGit(ctx context.Context, wd, ref string, paths []string) (*Base, error) {
	top, err := git(ctx, wd, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("base %q is neither a directory nor a commit of a git repository here: %w", ref, err)
	}
	topDir := strings.TrimSpace(string(top))
	commit, err := git(ctx, wd, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
	if err != nil {
		return nil, fmt.Errorf("base %q is neither a directory nor a commit of this repository", ref)
	}
	rev := strings.TrimSpace(string(commit))
	absWD, err := filepath.Abs(wd)
	if err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(absWD); err == nil {
		absWD = real
	}
	b := &Base{Label: ref}
	var inRepo []string // repository-relative, slash-separated
	for _, p := range paths {
		abs := p
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(absWD, p)
		}
		rel, err := filepath.Rel(topDir, abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("%s is outside the git repository %s", p, topDir)
		}
		rel = filepath.ToSlash(rel)
		out, err := git(ctx, topDir, "ls-tree", "--name-only", rev, "--", rel)
		if err != nil {
			return nil, err
		}
		if rel != "." && len(bytes.TrimSpace(out)) == 0 {
			b.Missing = append(b.Missing, p)
			continue
		}
		inRepo = append(inRepo, rel)
	}
	if len(inRepo) == 0 {
		return b, nil
	}
	tmp, err := os.MkdirTemp("", "mwgc-plan-base-")
	if err != nil {
		return nil, err
	}
	b.tmp = tmp
	tarball, err := git(ctx, topDir, append([]string{"archive", "--format=tar", rev, "--"}, inRepo...)...)
	if err == nil {
		err = untar(bytes.NewReader(tarball), tmp)
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	for _, rel := range inRepo {
		b.Paths = append(b.Paths, filepath.Join(tmp, filepath.FromSlash(rel)))
	}
	return b, nil
}

// untar writes the regular files and directories of a git archive under
// dir; anything else (links, paths leaving dir) is refused or skipped.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("git archive: unsafe path %q", h.Name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
