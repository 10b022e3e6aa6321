package mrkdwn

import (
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain *bold* _it_", "plain *bold* _it_"},
		{"<!channel> ping", "&lt;!channel&gt; ping"},
		{"a & b", "a &amp; b"},
		{"&amp;", "&amp;amp;"}, // already-escaped text is escaped again: it is user text
		{"<https://evil|click>", "&lt;https://evil|click&gt;"},
		{"line1\nline2", "line1\nline2"},
		{"日本語 <@U123>", "日本語 &lt;@U123&gt;"},
		// Bidirectional controls are shown, not obeyed.
		{"finance-admin\u202Eexe.txt", "finance-admin[U+202E]exe.txt"},
		{"\u202A\u202B\u202C\u202D\u2066\u2067\u2068\u2069", "[U+202A][U+202B][U+202C][U+202D][U+2066][U+2067][U+2068][U+2069]"},
		{"\u200Ejoiner-free\u2065", "\u200Ejoiner-free\u2065"}, // outside both ranges: untouched
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPlainText(t *testing.T) {
	if got := PlainText("web <01> & \u202Eexe.txt\u2066"); got != "web <01> & [U+202E]exe.txt[U+2066]" {
		t.Errorf("PlainText = %q", got)
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"one line", "one line"},
		{"a\nb", "a ⏎ b"},
		{"a\r\nb\rc", "a ⏎ b ⏎ c"},
		{"a\u2028b\u2029c\u0085d\ve\ff", "a ⏎ b ⏎ c ⏎ d ⏎ e ⏎ f"},
		{"日本語\n理由", "日本語 ⏎ 理由"},
	}
	for _, tt := range tests {
		got := OneLine(tt.in)
		if got != tt.want {
			t.Errorf("OneLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.ContainsAny(got, "\r\n\v\f\u0085\u2028\u2029") {
			t.Errorf("OneLine(%q) = %q still breaks lines", tt.in, got)
		}
	}
}

func TestLink(t *testing.T) {
	tests := []struct{ url, text, want string }{
		{"https://mackerel.io/orgs/acme/hosts/1", "app01", "<https://mackerel.io/orgs/acme/hosts/1|app01>"},
		{"https://x.example/a?b=1&c=2", "q", "<https://x.example/a?b=1&amp;c=2|q>"},
		{"https://x.example", "<b>&", "<https://x.example|&lt;b&gt;&amp;>"},
		{"https://x.example", "", "<https://x.example|https://x.example>"},
		{"javascript:alert(1)", "x", "x"},
		{"https://x.example/|<!channel>", "x", "x"},
		{"https://x.example/a b", "x<", "x&lt;"},
		{"", "text", "text"},
		{"HTTP://X.EXAMPLE", "x", "<HTTP://X.EXAMPLE|x>"},
	}
	for _, tt := range tests {
		if got := Link(tt.url, tt.text); got != tt.want {
			t.Errorf("Link(%q, %q) = %q, want %q", tt.url, tt.text, got, tt.want)
		}
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  \n", ""},
		{"one", "> one"},
		{"one\ntwo\n", "> one\n> two"},
		{"a\r\n\r\nb", "> a\n> \n> b"},
		{"<!here> & go", "> &lt;!here&gt; &amp; go"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMention(t *testing.T) {
	tests := []struct{ in, want string }{
		{"S0123ABC", "<!subteam^S0123ABC>"},
		{"U024BE7LH", "<@U024BE7LH>"},
		{"W012", "<@W012>"},
		{"here", "<!here>"},
		{"channel", "<!channel>"},
		{"", ""},
		{"C0123", ""},
		{"s0123", ""},
		{"S01>|x", ""},
		{"S", ""},
		{"@oncall", ""},
	}
	for _, tt := range tests {
		if got := Mention(tt.in); got != tt.want {
			t.Errorf("Mention(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 4, "hel…"},
		{"日本語テキスト", 3, "日本…"},
		{"x", 0, ""},
		{"", 1, ""},
	}
	for _, tt := range tests {
		if got := Truncate(tt.in, tt.max); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
