package policies

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a policy directory, located to the line
// so that an editor can jump to it.
type Problem struct {
	File string // path as given to Load or Check joined with the file name
	Line int    // 1-based; 0 when the problem concerns the whole file
	Msg  string
}

// String renders the problem the way compilers do: "file:line: message".
func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Problems is every problem found in a policy directory. Load returns it as
// its error so that callers can print all of them, not just the first.
type Problems []Problem

// Error joins the problems, one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// report collects problems for one file.
type report struct {
	file  string
	probs *Problems
}

func (r report) at(line int, format string, args ...any) {
	*r.probs = append(*r.probs, Problem{File: r.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}
