package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// buildInfo summarises the module version and VCS stamp of the binary.
type buildInfo struct {
	Version, GoVersion, Revision, Time string
	Modified                           bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(devel)"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.GoVersion = info.GoVersion
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is the one-line version, e.g. "v1.2.0 (3f2a9c1, 2025-01-02T03:04:05Z)".
func (b buildInfo) String() string {
	s := b.Version
	switch {
	case b.Revision != "":
		rev := b.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if b.Modified {
			rev += "+dirty"
		}
		s += " (" + rev
		if b.Time != "" {
			s += ", " + b.Time
		}
		s += ")"
	default:
		s += " (no VCS information recorded)"
	}
	return s
}

func printVersion(w io.Writer) {
	b := readBuildInfo()
	fmt.Fprintf(w, "tokken %s\n", b)
	if b.GoVersion != "" {
		fmt.Fprintf(w, "built with %s\n", b.GoVersion)
	}
}
