// Package mrkdwn builds Slack mrkdwn text safely. Every piece of text that
// did not come from tokken itself (a reason, a monitor name, a memo, a host
// name) goes through Escape before it is placed in mrkdwn, so "<!channel>"
// in a user's reason renders as text instead of pinging the channel and
// "<https://evil|click>" cannot disguise a link. This is the one escape
// helper in tokken: use it, do not write another.
package mrkdwn

import (
	"strings"
	"unicode/utf8"
)

// bidiControls pairs each Unicode bidirectional embedding, override and
// isolate control (U+202A–U+202E, U+2066–U+2069) with what is shown
// instead: its code point ("[U+202E]"). In user text these controls reorder
// what follows them, so that "finance-admin\u202Eexe.txt" would be
// displayed as "finance-admintxt.exe"; shown as code points, the text stays
// in logical order and the attempt is visible.
var bidiControls = []string{
	"\u202A", "[U+202A]", "\u202B", "[U+202B]", "\u202C", "[U+202C]", "\u202D", "[U+202D]", "\u202E", "[U+202E]",
	"\u2066", "[U+2066]", "\u2067", "[U+2067]", "\u2068", "[U+2068]", "\u2069", "[U+2069]",
}

// escaper replaces the three characters Slack's formatting syntax gives
// meaning to, as Slack documents ("Escaping text"), and neutralises the
// bidirectional controls.
var escaper = strings.NewReplacer(append([]string{"&", "&amp;", "<", "&lt;", ">", "&gt;"}, bidiControls...)...)

// bidi neutralises the bidirectional controls alone, for PlainText.
var bidi = strings.NewReplacer(bidiControls...)

// Escape makes s safe to embed in mrkdwn: &, < and > become &amp;, &lt;
// and &gt;, and bidirectional controls are neutralised (see bidiControls).
// Other characters, newlines included, are left alone: use OneLine where
// the text must stay on one line.
func Escape(s string) string { return escaper.Replace(s) }

// PlainText makes s safe to show in a plain_text object (a select
// option, a button label), where Slack does not interpret &, < and >:
// only the bidirectional controls are neutralised, as Escape does.
func PlainText(s string) string { return bidi.Replace(s) }

// lineBreaker replaces every character that starts a new line when
// displayed: CR LF, CR, LF, vertical tab, form feed, NEL and the Unicode
// line and paragraph separators.
var lineBreaker = strings.NewReplacer(
	"\r\n", " ⏎ ", "\r", " ⏎ ", "\n", " ⏎ ", "\v", " ⏎ ", "\f", " ⏎ ",
	"\u0085", " ⏎ ", "\u2028", " ⏎ ", "\u2029", " ⏎ ",
)

// OneLine keeps s on one line: each line break in it (see lineBreaker)
// becomes " ⏎ ", so text that is meant to be one line (an audit line, a
// log-like record) cannot be made to look like several. It does not
// escape: apply Escape as well.
func OneLine(s string) string { return lineBreaker.Replace(s) }

// Link returns a link to url showing text (escaped). A url that is not
// http(s) or that contains characters that would break out of the link
// syntax (|, <, >, spaces) yields just the escaped text: a link that cannot
// be made safe is not made.
func Link(url, text string) string {
	if text == "" {
		text = url
	}
	if !SafeURL(url) {
		return Escape(text)
	}
	return "<" + strings.ReplaceAll(url, "&", "&amp;") + "|" + Escape(text) + ">"
}

// SafeURL reports whether url can be placed in a Slack link or image block:
// http or https, and free of the characters that delimit mrkdwn links.
func SafeURL(url string) bool {
	lower := strings.ToLower(url)
	if !strings.HasPrefix(lower, "https://") && !strings.HasPrefix(lower, "http://") {
		return false
	}
	return !strings.ContainsAny(url, "|<> \t\r\n")
}

// Quote renders s (escaped) as a block quote, keeping its line breaks:
// every line is prefixed with "> ". Empty input gives "".
func Quote(s string) string {
	s = strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	if strings.TrimSpace(s) == "" {
		return ""
	}
	lines := strings.Split(Escape(s), "\n")
	for i, l := range lines {
		lines[i] = "> " + l
	}
	return strings.Join(lines, "\n")
}

// Mention renders a Slack mention from an id: a user group ("S…") as
// <!subteam^S…>, a user ("U…", "W…") as <@U…>, and "here", "channel" or
// "everyone" as the special mentions. Anything else gives "" rather than
// risking a malformed or injected mention.
func Mention(id string) string {
	switch id {
	case "here", "channel", "everyone":
		return "<!" + id + ">"
	}
	if !isSlackID(id) {
		return ""
	}
	switch id[0] {
	case 'S':
		return "<!subteam^" + id + ">"
	case 'U', 'W':
		return "<@" + id + ">"
	}
	return ""
}

// isSlackID reports whether id looks like a Slack object id: an upper-case
// letter followed by upper-case letters and digits.
func isSlackID(id string) bool {
	if len(id) < 2 || len(id) > 32 {
		return false
	}
	for i, c := range id {
		if !('A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Truncate shortens s to at most max runes, ending with "…" when it cut.
// Slack rejects blocks whose text exceeds its limits (3000 characters in a
// section), so long untrusted text is cut before Escape, which can lengthen
// it (callers leave room for that); cutting after escaping could split an
// entity such as "&amp;".
func Truncate(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max-1]) + "…"
}
