package access

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		text    string
		want    Command
		wantErr string // substring of the user-facing error
	}{
		{text: "", want: Command{Verb: VerbModal}},
		{text: "   \t ", want: Command{Verb: VerbModal}},
		{text: "help", want: Command{Verb: VerbHelp}},
		{text: "HELP", want: Command{Verb: VerbHelp}},
		{text: "list", want: Command{Verb: VerbList}},
		{text: "list all", wantErr: "`/access list` takes no arguments"},
		{text: "revoke r-7k3q9x0m2c4d", want: Command{Verb: VerbRevoke, RequestID: "r-7k3q9x0m2c4d"}},
		{text: "revoke R-7K3Q9X0M2C4D done early", want: Command{Verb: VerbRevoke, RequestID: "r-7k3q9x0m2c4d", Reason: "done early"}},
		{text: "revoke", wantErr: "Which request?"},
		{text: "revoke 42", wantErr: `"42" is not a request id`},
		{text: "creds R-7K3Q9X0M2C4D", want: Command{Verb: VerbCreds, RequestID: "r-7k3q9x0m2c4d"}},
		{text: "creds", wantErr: "/access creds <request-id>"},
		{text: "creds r-7k3q9x0m2c4d now", wantErr: "/access creds <request-id>"},
		{text: "creds 42", wantErr: `"42" is not a request id`},
		{text: "--break-glass creds 1h x", wantErr: BreakGlassFlag + "` goes with a request"},
		{text: "prod-ssm 10m i-0abc123def4567890 investigating 5xx on web-01", want: Command{
			Verb: VerbRequest, Profile: "prod-ssm", Duration: 10 * time.Minute,
			Instances: []string{"i-0abc123def4567890"}, Reason: "investigating 5xx on web-01"}},
		{text: "prod-admin 1h30m  rotate   keys", want: Command{Verb: VerbRequest, Profile: "prod-admin", Duration: 90 * time.Minute, Reason: "rotate keys"}},
		{text: "prod-admin 90m x", want: Command{Verb: VerbRequest, Profile: "prod-admin", Duration: 90 * time.Minute, Reason: "x"}},
		{text: "prod-admin 24h x", want: Command{Verb: VerbRequest, Profile: "prod-admin", Duration: 24 * time.Hour, Reason: "x"}},
		{text: "prod-ssm 1h i-12345678,i-0ABC123DEF4567890 i-12345678 rdp", want: Command{
			Verb: VerbRequest, Profile: "prod-ssm", Duration: time.Hour,
			Instances: []string{"i-12345678", "i-0abc123def4567890"}, Reason: "rdp"}},
		{text: "--break-glass prod-ssm 30m i-0abc123def4567890 db down", want: Command{
			Verb: VerbRequest, Profile: "prod-ssm", Duration: 30 * time.Minute,
			Instances: []string{"i-0abc123def4567890"}, Reason: "db down", BreakGlass: true}},
		{text: "prod-ssm --break-glass 30m i-0abc123def4567890 db down", want: Command{
			Verb: VerbRequest, Profile: "prod-ssm", Duration: 30 * time.Minute,
			Instances: []string{"i-0abc123def4567890"}, Reason: "db down", BreakGlass: true}},
		{text: "prod-ssm 30m i-0abc123def4567890 --BREAK-GLASS db down", want: Command{
			Verb: VerbRequest, Profile: "prod-ssm", Duration: 30 * time.Minute,
			Instances: []string{"i-0abc123def4567890"}, Reason: "db down", BreakGlass: true}},
		{text: "prod-ssm 30m i-0abc123def4567890 db down —break-glass", want: Command{
			Verb: VerbRequest, Profile: "prod-ssm", Duration: 30 * time.Minute,
			Instances: []string{"i-0abc123def4567890"}, Reason: "db down", BreakGlass: true}},
		{text: "prod-admin 1h why --break-glass is in the reason", want: Command{
			Verb: VerbRequest, Profile: "prod-admin", Duration: time.Hour, Reason: "why --break-glass is in the reason"}},
		{text: "--break-glass", wantErr: "goes with a request"},
		{text: "--break-glass list", wantErr: "goes with a request"},
		{text: "--break-glass --break-glass prod-ssm 1h x", wantErr: "goes with a request"},
		{text: "--break-glass prod-ssm 30m", wantErr: "A reason is required"},
		{text: "prod-ssm", wantErr: "How long?"},
		{text: "prod-ssm investigating", wantErr: "How long?"},
		{text: "prod-ssm 10 x", wantErr: `"10" is not a duration`},
		{text: "prod-ssm 10s x", wantErr: `"10s" is not a duration`},
		{text: "prod-ssm 1.5h x", wantErr: `"1.5h" is not a duration`},
		{text: "prod-ssm -10m x", wantErr: `"-10m" is not a duration`},
		{text: "prod-ssm 0m x", wantErr: "no time at all"},
		{text: "prod-ssm 0h0m x", wantErr: "no time at all"},
		{text: "prod-ssm 25h x", wantErr: "longer than 24h"},
		{text: "prod-ssm 1441m x", wantErr: "longer than 24h"},
		{text: "prod-ssm 99999999h x", wantErr: "is not a duration"},
		{text: "prod-ssm 10m", wantErr: "A reason is required"},
		{text: "prod-ssm 10m i-0abc123def4567890", wantErr: "A reason is required"},
		{text: "prod-ssm 10m i-xyz fix", wantErr: `"i-xyz" is not an instance id`},
		{text: "prod-ssm 10m i-0abc123def456789 fix", wantErr: "8 or 17 hex digits"},
		{text: "prod/ssm 10m fix", wantErr: "is not a profile name"},
		{text: "<@U123> 10m fix", wantErr: "is not a profile name"},
		{text: "prod-admin 10m " + strings.Repeat("x", MaxReasonChars+1), wantErr: "501 characters; it may have at most 500"},
		// Characters, not bytes: 500 kana (1500 bytes) fit, 501 kana (1503 bytes) are 501 characters.
		{text: "prod-admin 10m " + strings.Repeat("あ", MaxReasonChars), want: Command{
			Verb: VerbRequest, Profile: "prod-admin", Duration: 10 * time.Minute, Reason: strings.Repeat("あ", MaxReasonChars)}},
		{text: "prod-admin 10m " + strings.Repeat("あ", MaxReasonChars+1), wantErr: "501 characters; it may have at most 500"},
		{text: "prod-ssm 10m " + strings.Repeat("i-12345678,", 0) + manyInstances(MaxInstances+1) + " fix", wantErr: "too many"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := ParseCommand(tt.text)
			if tt.wantErr != "" {
				var ce *CommandError
				if !errors.As(err, &ce) || !strings.Contains(ce.Msg, tt.wantErr) {
					t.Fatalf("ParseCommand(%q) = %+v, %v; want error containing %q", tt.text, got, err, tt.wantErr)
				}
				if msg, ok := Explain(err); !ok || msg != ce.Msg {
					t.Fatalf("Explain = %q, %v", msg, ok)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", tt.text, err)
			}
			if got.Verb != tt.want.Verb || got.RequestID != tt.want.RequestID || got.Profile != tt.want.Profile ||
				got.Duration != tt.want.Duration || got.Reason != tt.want.Reason || !slices.Equal(got.Instances, tt.want.Instances) {
				t.Fatalf("ParseCommand(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func manyInstances(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "i-" + strings.Repeat("0", 6) + string(rune('a'+i/16)) + string("0123456789abcdef"[i%16])
	}
	return strings.Join(ids, " ")
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"", "help", "list", "revoke r-7k3q9x0m2c4d", "creds r-7k3q9x0m2c4d", "prod-ssm 10m i-0abc123def4567890 investigating 5xx",
		"prod-admin 1h30m rotate", "x 0m y", "x 99999h y", "x 10m i-, fix", "x 10m i-12345678,,i-12345678 y",
		"revoke r-\x00", "\u00a0help", "prod 1h\u200b x", "a 9999h9999m x",
		"--break-glass prod-ssm 30m i-0abc123def4567890 db down", "x --break-glass 1h y", "x 1h y —break-glass", "--break-glass",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCommand(text)
		if err != nil {
			var ce *CommandError
			if !errors.As(err, &ce) || ce.Msg == "" {
				t.Fatalf("ParseCommand(%q): error %v is not a user-facing CommandError", text, err)
			}
			return
		}
		switch c.Verb {
		case VerbModal, VerbHelp, VerbList:
		case VerbRevoke, VerbCreds:
			if !ValidRequestID(c.RequestID) {
				t.Fatalf("revoke of invalid id %q", c.RequestID)
			}
		case VerbRequest:
			if c.Duration <= 0 || c.Duration > MaxCommandDuration || c.Duration%time.Minute != 0 {
				t.Fatalf("duration %s accepted from %q", c.Duration, text)
			}
			if c.Reason == "" || len(c.Reason) > MaxReasonChars {
				t.Fatalf("reason %q accepted", c.Reason)
			}
			for _, id := range c.Instances {
				if !bot.IsInstanceID(id) {
					t.Fatalf("instance %q accepted", id)
				}
			}
		default:
			t.Fatalf("unknown verb %q", c.Verb)
		}
	})
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Minute: "1h30m", 24 * time.Hour: "24h",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(want); err != nil || back != d {
			t.Errorf("ParseDuration(%q) = %s, %v", want, back, err)
		}
	}
}
