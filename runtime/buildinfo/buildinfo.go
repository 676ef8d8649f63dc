// Package buildinfo says which build of mwgc is running: the module
// version, the VCS revision and time the go tool stamped into the binary,
// and the Go release. Both binaries print it for --version, and the agent
// exports it as mwgc_agent_build_info.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info describes the running binary. Fields the build did not record are
// empty ("(devel)" for a version outside a tagged module build).
type Info struct {
	Version   string // module version, such as v0.3.0 or (devel)
	Revision  string // VCS revision
	Time      string // VCS commit time, RFC 3339
	Modified  bool   // built from a work tree with uncommitted changes
	GoVersion string
}

// Set with -ldflags -X by `make build`, for builds the go tool does not
// stamp: it does not recognise a git worktree (.git is a file there), and
// -buildvcs=false turns stamping off.
var (
	version  string
	revision string
	modified string
)

// Read returns the build information of the running binary.
func Read() Info {
	info := Info{Version: "(devel)", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.fromBuildInfo(bi)
	}
	if version != "" && info.Version == "(devel)" {
		info.Version = version
	}
	if revision != "" && info.Revision == "" {
		info.Revision, info.Modified = revision, modified == "true"
	}
	return info
}

func (info *Info) fromBuildInfo(bi *debug.BuildInfo) {
	if v := bi.Main.Version; v != "" {
		info.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
}

// String is one line for --version: program, version, revision (with
// "+modified" when dirty), commit time and Go release.
func (i Info) String(program string) string {
	parts := []string{program, i.Version}
	var details []string
	if i.Revision != "" {
		rev := i.Revision
		if i.Modified {
			rev += "+modified"
		}
		details = append(details, "revision "+rev)
	}
	if i.Time != "" {
		details = append(details, i.Time)
	}
	details = append(details, i.GoVersion)
	return fmt.Sprintf("%s (%s)", strings.Join(parts, " "), strings.Join(details, ", "))
}
