package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
)

// MinKeyLen is the shortest key accepted: HMAC-SHA256's own block of
// strength, 32 bytes (64 hex digits).
const MinKeyLen = 32

// MaxKeys bounds a key file: one key that signs plus a few that are still
// accepted during a rotation.
const MaxKeys = 4

// ParseKeyFile reads a key file: one key per line as hex digits (at least
// 64, i.e. 32 bytes), blank lines and lines starting with '#' ignored. The
// first key signs; every key verifies, so a key is rotated by adding the new
// one below the old on every node, then moving it to the top, then removing
// the old one.
func ParseKeyFile(data []byte) ([][]byte, error) {
	var keys [][]byte
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k := make([]byte, hex.DecodedLen(len(line)))
		if _, err := hex.Decode(k, line); err != nil {
			return nil, fmt.Errorf("line %d: not a hex key: %v", i+1, err)
		}
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("line %d: key is %d bytes, at least %d needed (%d hex digits)", i+1, len(k), MinKeyLen, 2*MinKeyLen)
		}
		for _, o := range keys {
			if bytes.Equal(o, k) {
				return nil, fmt.Errorf("line %d: the same key appears twice", i+1)
			}
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key in the file (one hex key per line, at least 64 hex digits)")
	}
	if len(keys) > MaxKeys {
		return nil, fmt.Errorf("%d keys, at most %d", len(keys), MaxKeys)
	}
	return keys, nil
}
