package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxSize bounds a plan file; a plan for one node is a few kilobytes.
const MaxSize = 4 << 20

// Decode parses a plan strictly and validates it. Any error leaves the
// caller's running plan untouched: Decode never returns a partial plan.
func Decode(data []byte) (*Plan, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("plan is %d bytes, more than the %d allowed", len(data), MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return nil, describeJSONError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("plan: unexpected data after the JSON object")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// ReadFile reads and decodes the plan at path.
func ReadFile(path string) (*Plan, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, nil, err
	}
	p, err := Decode(data)
	if err != nil {
		return nil, data, fmt.Errorf("%s: %w", path, err)
	}
	return p, data, nil
}

// Encode returns the canonical encoding of p with its digest filled in:
// indented JSON with a final newline. Equal plans encode to equal bytes.
func Encode(p *Plan) ([]byte, error) {
	b, _, err := EncodeDigest(p)
	return b, err
}

// EncodeDigest is Encode that also returns the digest it filled in: the
// one string that names this plan everywhere (mwgc compile's output, the
// manifest, the agent's --check, /status and metrics).
func EncodeDigest(p *Plan) ([]byte, string, error) {
	c := *p
	d, err := ComputeDigest(&c)
	if err != nil {
		return nil, "", err
	}
	c.Digest = d
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, "", err
	}
	return append(b, '\n'), d, nil
}

// ComputeDigest returns "sha256:<hex>" over the compact JSON encoding of p
// with Digest empty and without Rollout (which lists the other nodes'
// digests). Field order is fixed by the Go types, so the encoding is
// canonical.
func ComputeDigest(p *Plan) (string, error) {
	c := *p
	c.Digest = ""
	c.Rollout = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// describeJSONError adds the line and column to the decoder's message, so
// an operator can find the fault in the file.
func describeJSONError(data []byte, err error) error {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	if off < 0 {
		return fmt.Errorf("plan: %v", err)
	}
	// The decoder's offset counts the bytes read including the offending
	// one; point at that byte.
	off = max(off-1, 0)
	line, col := 1, 1
	for _, c := range data[:min(int(off), len(data))] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Errorf("plan:%d:%d: %v", line, col, err)
}
