// Package keyfile reads the shared secrets of authenticated VRRP from files
// on the directors, in the format keepalived's auth_hmac reads with
// "key ID file:PATH": "hex:<digits>" for raw bytes, anything else is the key
// as text; a trailing line end is ignored. One file serves both programs
// during a migration.
//
// A key file that others can read, or that someone other than its owner can
// change, is refused: the key lets its holder speak for every director.
package keyfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// Key length bounds (HMAC-SHA256 keys, as keepalived).
const (
	MinLen = 32
	MaxLen = 64
	// maxFile bounds what is read: "hex:" and 128 digits with a line end.
	maxFile = 4 + 2*MaxLen + 8
)

// Read reads and checks one key file.
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if err := checkMode(st); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("key file %s: larger than %d bytes: not a key file", path, maxFile)
	}
	key, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}

// Check is Read for content and mode the caller read itself (the agent's
// node is pure: its executor reads files): the same refusals except the
// owner, which the mode does not carry.
func Check(data []byte, mode os.FileMode) ([]byte, error) {
	if !mode.IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", mode.Type())
	}
	if err := checkPerm(mode.Perm()); err != nil {
		return nil, err
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("larger than %d bytes: not a key file", maxFile)
	}
	return Parse(data)
}

func checkPerm(perm os.FileMode) error {
	switch {
	case perm&0o007 != 0:
		return fmt.Errorf("mode %04o lets others read or change the key; chmod 600", perm)
	case perm&0o020 != 0:
		return fmt.Errorf("mode %04o lets its group change the key; chmod 600", perm)
	}
	return nil
}

// checkMode refuses anything but a regular file, readable only by its
// owner (or its group), writable only by its owner, owned by root or by
// the user running us.
func checkMode(st os.FileInfo) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%v)", st.Mode().Type())
	}
	if err := checkPerm(st.Mode().Perm()); err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if uid := int(sys.Uid); uid != 0 && uid != os.Geteuid() {
			return fmt.Errorf("owned by uid %d, neither root nor this process (uid %d): its owner could change the key", uid, os.Geteuid())
		}
	}
	return nil
}

// Parse decodes the content of a key file.
func Parse(data []byte) ([]byte, error) {
	s := strings.TrimRight(string(data), "\r\n")
	var key []byte
	if digits, ok := strings.CutPrefix(s, "hex:"); ok {
		var err error
		if key, err = hex.DecodeString(digits); err != nil {
			return nil, fmt.Errorf(`"hex:" followed by something that is not an even number of hex digits: %v`, err)
		}
	} else {
		if strings.ContainsAny(s, "\n\r") {
			return nil, errors.New(`more than one line: a key file holds one key ("hex:<digits>" or the key as text)`)
		}
		key = []byte(s)
	}
	if len(key) < MinLen || len(key) > MaxLen {
		return nil, fmt.Errorf("key of %d bytes, want %d..%d (e.g. umask 077; echo hex:$(openssl rand -hex 32) > FILE)", len(key), MinLen, MaxLen)
	}
	return key, nil
}

// Fingerprint names a key in logs and status without revealing it: the
// first 8 bytes of its SHA-256, in hex.
func Fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}
