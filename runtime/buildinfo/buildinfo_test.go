package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, c := range []struct {
		info Info
		want string
	}{
		{Info{Version: "(devel)", GoVersion: "go1.26.8"}, "mwgc (devel) (go1.26.8)"},
		{Info{Version: "v0.3.0", Revision: "abc123", Time: "2026-01-02T03:04:05Z", GoVersion: "go1.26.8"},
			"mwgc v0.3.0 (revision abc123, 2026-01-02T03:04:05Z, go1.26.8)"},
		{Info{Version: "(devel)", Revision: "abc123", Modified: true, GoVersion: "go1.26.8"},
			"mwgc (devel) (revision abc123+modified, go1.26.8)"},
	} {
		if got := c.info.String("mwgc"); got != c.want {
			t.Errorf("String = %q, want %q", got, c.want)
		}
	}
}

func TestReadNamesTheGoRelease(t *testing.T) {
	i := Read()
	if i.GoVersion != runtime.Version() || i.Version == "" {
		t.Errorf("Read() = %+v", i)
	}
	if !strings.HasPrefix(i.String("x"), "x ") {
		t.Errorf("String does not start with the program: %q", i.String("x"))
	}
}

// TestLinkerValues: what make build passes with -ldflags -X fills in what
// the go tool did not stamp.
func TestLinkerValues(t *testing.T) {
	defer func(v, r, m string) { version, revision, modified = v, r, m }(version, revision, modified)
	version, revision, modified = "v0.9.0-3-gabc", "abc123", "true"
	// A test binary carries no VCS stamp, so the linker's values show.
	want := Info{Version: "v0.9.0-3-gabc", Revision: "abc123", Modified: true, GoVersion: runtime.Version()}
	if got := Read(); got != want {
		t.Errorf("Read() = %+v, want %+v", got, want)
	}
}
