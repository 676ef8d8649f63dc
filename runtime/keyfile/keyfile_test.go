package keyfile

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vrrp.key")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask may have masked it
		t.Fatal(err)
	}
	return p
}

var key32 = bytes.Repeat([]byte{0xab}, 32)

func TestRead(t *testing.T) {
	hex32 := "hex:" + hex.EncodeToString(key32)
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    []byte
		err     string
	}{
		{"hex", hex32, 0o600, key32, ""},
		{"hex with a line end", hex32 + "\n", 0o600, key32, ""},
		{"hex with CRLF", hex32 + "\r\n", 0o400, key32, ""},
		{"text", strings.Repeat("k", 40) + "\n", 0o600, bytes.Repeat([]byte("k"), 40), ""},
		{"group may read", hex32, 0o640, key32, ""},
		{"others may read", hex32, 0o604, nil, "mode 0604 lets others read or change the key"},
		{"world readable", hex32, 0o644, nil, "mode 0644 lets others read"},
		{"group may write", hex32, 0o660, nil, "mode 0660 lets its group change the key"},
		{"too short", "hex:" + hex.EncodeToString(key32[:31]), 0o600, nil, "key of 31 bytes, want 32..64"},
		{"too long text", strings.Repeat("k", 65), 0o600, nil, "key of 65 bytes"},
		{"bad hex", "hex:zz" + strings.Repeat("0", 62), 0o600, nil, `"hex:" followed by something`},
		{"odd hex", "hex:" + strings.Repeat("0", 65), 0o600, nil, `"hex:" followed by something`},
		{"two lines", strings.Repeat("k", 32) + "\n" + strings.Repeat("j", 32), 0o600, nil, "more than one line"},
		{"huge", strings.Repeat("k", 1000), 0o600, nil, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, tc.content, tc.mode)
			got, err := Read(p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), p) {
					t.Fatalf("err %v, want %q naming the file", err, tc.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("Read = %x, %v", got, err)
			}
		})
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Read(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

// TestOwner: a key file owned by another unprivileged user is refused
// (only checkable as root, who can chown).
func TestOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	p := write(t, "hex:"+hex.EncodeToString(key32), 0o600)
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("file of nobody: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	a, b := Fingerprint(key32), Fingerprint(append(bytes.Clone(key32[:31]), 0))
	if len(a) != 16 || a == b || strings.Contains(a, hex.EncodeToString(key32[:4])) {
		t.Fatalf("fingerprints %q %q", a, b)
	}
}

// FuzzParse: whatever a file holds, Parse returns a key of a valid length
// or an error; a key it returns reads back the same written as hex.
func FuzzParse(f *testing.F) {
	f.Add([]byte("hex:" + hex.EncodeToString(key32) + "\n"))
	f.Add([]byte(strings.Repeat("x", 33)))
	f.Add([]byte("hex:"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := Parse(data)
		if err != nil {
			return
		}
		if len(key) < MinLen || len(key) > MaxLen {
			t.Fatalf("key of %d bytes accepted", len(key))
		}
		back, err := Parse([]byte("hex:" + hex.EncodeToString(key)))
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("hex round trip: %x, %v", back, err)
		}
	})
}

func TestCheck(t *testing.T) {
	data := []byte("hex:" + hex.EncodeToString(key32) + "\n")
	if k, err := Check(data, 0o600); err != nil || !bytes.Equal(k, key32) {
		t.Fatalf("Check = %x, %v", k, err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{{0o644, "lets others read"}, {0o620, "lets its group change"}, {os.ModeSymlink | 0o600, "not a regular file"}} {
		if _, err := Check(data, tc.mode); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mode %v: %v, want %q", tc.mode, err, tc.want)
		}
	}
}
