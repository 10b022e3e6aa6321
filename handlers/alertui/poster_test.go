package alertui

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tokken/tokken/bot/alert"
)

// TestFitLines: a storm reply takes as many lines as fit in Slack's text
// limit, measured after mrkdwn escaping, and always at least one.
func TestFitLines(t *testing.T) {
	p := NewPoster(nil, NewPacer(0, nil), Options{}, nil)
	line := func(text string) alert.Line { return alert.Line{Kind: "note", Text: text} }
	many := func(n int, text string) []alert.Line {
		out := make([]alert.Line, n)
		for i := range out {
			out[i] = line(text)
		}
		return out
	}
	tests := []struct {
		name  string
		lines []alert.Line
	}{
		{"none", nil},
		{"one short", many(1, "disk full")},
		{"short lines all fit", many(250, "disk full on web01")},
		{"escaping counts", many(100, strings.Repeat("<", 500))}, // 2,000 characters each once escaped
		{"plain long lines", many(100, strings.Repeat("x", 500))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := p.FitLines(tt.lines)
			if len(tt.lines) > 0 && (n < 1 || n > len(tt.lines)) {
				t.Fatalf("FitLines = %d of %d lines", n, len(tt.lines))
			}
			render := func(ls []alert.Line) string {
				s := make([]string, len(ls))
				for i, l := range ls {
					s[i] = RenderLine(l, Options{})
				}
				return strings.Join(s, "\n")
			}
			if got := utf8.RuneCountInString(render(tt.lines[:n])); got > MaxReplyText {
				t.Errorf("%d lines render to %d characters, limit %d", n, got, MaxReplyText)
			}
			if n < len(tt.lines) {
				if got := utf8.RuneCountInString(render(tt.lines[:n+1])); got <= MaxReplyText {
					t.Errorf("FitLines = %d, but %d lines (%d characters) fit too", n, n+1, got)
				}
			}
		})
	}
}
