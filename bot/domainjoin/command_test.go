package domainjoin_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/tokken/tokken/bot/domainjoin"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		text    string
		want    domainjoin.Command
		wantErr string
	}{
		{"", domainjoin.Command{Verb: domainjoin.VerbHelp}, ""},
		{"  help me  ", domainjoin.Command{Verb: domainjoin.VerbHelp}, ""},
		{"join i-0123456789abcdef0", domainjoin.Command{Verb: domainjoin.VerbJoin, Instance: "i-0123456789abcdef0"}, ""},
		{"JOIN web-01 --force", domainjoin.Command{Verb: domainjoin.VerbJoin, Instance: "web-01", Force: true}, ""},
		{"join --force web-01", domainjoin.Command{Verb: domainjoin.VerbJoin, Instance: "web-01", Force: true}, ""},
		{"join web-01 \u2014force", domainjoin.Command{Verb: domainjoin.VerbJoin, Instance: "web-01", Force: true}, ""},
		{"leave web-01 -f", domainjoin.Command{Verb: domainjoin.VerbLeave, Instance: "web-01", Force: true}, ""},
		{"unjoin web-01", domainjoin.Command{Verb: domainjoin.VerbLeave, Instance: "web-01"}, ""},
		{"status web-01", domainjoin.Command{Verb: domainjoin.VerbStatus, Instance: "web-01"}, ""},
		{`join "File Server 2"`, domainjoin.Command{Verb: domainjoin.VerbJoin, Instance: "File Server 2"}, ""},
		{"join \u201cFile Server\u201d", domainjoin.Command{Verb: domainjoin.VerbJoin, Instance: "File Server"}, ""},
		{"join File   Server", domainjoin.Command{Verb: domainjoin.VerbJoin, Instance: "File Server"}, ""},
		{"join", domainjoin.Command{}, "Say which instance: `/domain join"},
		{"leave --force", domainjoin.Command{}, "Say which instance"},
		{"status web-01 --force", domainjoin.Command{}, "--force applies to join and leave"},
		{"join web-01 --now", domainjoin.Command{}, `Unknown option "--now"`},
		{"reboot web-01", domainjoin.Command{}, `Unknown subcommand "reboot"`},
		{"join " + strings.Repeat("x", 257), domainjoin.Command{}, "longer than 256"},
		{"join \"\"", domainjoin.Command{}, "Say which instance"},
		{"join \xff", domainjoin.Command{}, "not valid text"},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			got, err := domainjoin.ParseCommand(tc.text)
			if tc.wantErr != "" {
				u, ok := domainjoin.AsUserError(err)
				if !ok || !strings.Contains(u.Msg, tc.wantErr) || !strings.Contains(u.Msg, domainjoin.Usage) {
					t.Fatalf("err = %v, want a UserError with %q and the usage", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseCommand = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"", "join web-01", "leave i-0123456789abcdef0 --force", "status \"a b\"", "join \u2014f x", "x\x00y", "join '"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := domainjoin.ParseCommand(text)
		if err != nil {
			if _, ok := domainjoin.AsUserError(err); !ok {
				t.Fatalf("error is not a UserError: %v", err)
			}
			return
		}
		switch c.Verb {
		case domainjoin.VerbHelp:
			return
		case domainjoin.VerbJoin, domainjoin.VerbLeave, domainjoin.VerbStatus:
		default:
			t.Fatalf("verb %q", c.Verb)
		}
		if c.Instance == "" || utf8.RuneCountInString(c.Instance) > 256 || !utf8.ValidString(c.Instance) {
			t.Fatalf("bad instance %q", c.Instance)
		}
		if strings.IndexFunc(c.Instance, unicode.IsControl) >= 0 || c.Instance != strings.TrimSpace(c.Instance) {
			t.Fatalf("instance %q has control characters or edge spaces", c.Instance)
		}
		if c.Force && c.Verb == domainjoin.VerbStatus {
			t.Fatalf("status with --force accepted")
		}
	})
}
