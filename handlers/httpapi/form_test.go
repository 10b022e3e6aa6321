package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

// formRequest is a POST of body with Content-Type ct ("" for none).
func formRequest(body, ct string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	return r
}

// sameFormAsNetHTTP fails unless parseSlashCommand and interactionPayload
// read body exactly as ParseForm, slack.SlashCommandParse and
// PostForm.Get("payload") do: the same fields and the same refusals.
func sameFormAsNetHTTP(t *testing.T, body, ct string) {
	t.Helper()
	want, wantErr := slack.SlashCommandParse(formRequest(body, ct))
	ref := formRequest(body, ct)
	refErr := ref.ParseForm()
	got, ssl, err := parseSlashCommand(formRequest(body, ct))
	if (err != nil) != (wantErr != nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("body %q (%s): error %v, net/http's %v", body, ct, err, wantErr)
	}
	if err != nil {
		return
	}
	if got != want {
		t.Fatalf("body %q (%s):\n got %+v\nwant %+v", body, ct, got, want)
	}
	if wantSSL := ref.PostForm.Get("ssl_check") == "1"; ssl != wantSSL {
		t.Fatalf("body %q: ssl_check %v, want %v", body, ssl, wantSSL)
	}
	payload, perr := interactionPayload(formRequest(body, ct))
	if (perr != nil) != (refErr != nil) || string(payload) != ref.PostForm.Get("payload") {
		t.Fatalf("body %q: payload %q (%v), want %q (%v)", body, payload, perr, ref.PostForm.Get("payload"), refErr)
	}
}

const formCT = "application/x-www-form-urlencoded"

func TestFormMatchesNetHTTP(t *testing.T) {
	slash := url.Values{
		"token": {"tok"}, "team_id": {"T1"}, "team_domain": {"ex"}, "enterprise_id": {"E1"}, "enterprise_name": {"Ent"},
		"is_enterprise_install": {"true"}, "channel_id": {"C1"}, "channel_name": {"ops"}, "user_id": {"U1"}, "user_name": {"alice"},
		"command": {"/access"}, "text": {"prod-ssm 30m investigating 5xx & <@U2> 100% +1 ünïcode"},
		"response_url": {"https://hooks.slack.com/commands/T1/1/abc"}, "trigger_id": {"1.2.abc"}, "api_app_id": {"A1"},
	}.Encode()
	tests := []struct{ name, body, ct string }{
		{"slash command", slash, formCT},
		{"charset parameter", slash, formCT + "; charset=utf-8"},
		{"no content type", slash, ""},
		{"json content type", `{"command":"/access"}`, "application/json"},
		{"bad content type", slash, "application/x-www-form-urlencoded; ="},
		{"repeated key, first wins", "command=%2Faccess&command=%2Fother&user_id=U1&user_id=U2", formCT},
		{"ssl check", "ssl_check=1&token=x", formCT},
		{"interaction", "payload=" + url.QueryEscape(`{"type":"block_actions","user":{"id":"U1"}}`), formCT},
		{"plus is a space", "text=a+b%2Bc&command=%2Fx&user_id=U", formCT},
		{"bad escape in an unread value", "command=%2Faccess&user_id=U1&other=%zz", formCT},
		{"bad escape in a key", "comm%2and=x", formCT},
		{"truncated escape", "command=%2", formCT},
		{"semicolon", "command=%2Faccess;user_id=U1", formCT},
		{"semicolon after a bad escape", "%&;", formCT},
		{"too many parameters", strings.Repeat("a=1&", 10000), formCT},
		{"as many parameters as allowed", strings.Repeat("a=1&", 9999) + "command=%2Fx", formCT},
		{"empty parts and keys", "&&=x&command=%2Fa&&user_id=U&", formCT},
		{"key without value", "command&user_id=U1", formCT},
		{"empty", "", formCT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { sameFormAsNetHTTP(t, tt.body, tt.ct) })
	}
}

func TestUnescapeQueryInPlace(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain-value_1.2", "plain-value_1.2"},
		{"a+b%2Bc", "a b+c"},
		{"%7B%22type%22%3A%22x%22%7D", `{"type":"x"}`},
	}
	for _, tt := range tests {
		in := []byte(tt.in)
		out, err := unescapeQuery(in)
		if err != nil || string(out) != tt.want || &out[0] != &in[0] {
			t.Errorf("unescapeQuery(%q) = %q, %v; want %q in the input's own buffer", tt.in, out, err, tt.want)
		}
	}
	for _, bad := range []string{"%25%zz", "a%2", "%", "x%4g"} {
		_, err := unescapeQuery([]byte(bad))
		_, want := url.QueryUnescape(bad)
		if err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("unescapeQuery(%q) error %v, want url.QueryUnescape's %v", bad, err, want)
		}
	}
}

func BenchmarkParseSlashCommand(b *testing.B) {
	body := url.Values{
		"token": {"tok"}, "team_id": {"T0TEAM0001"}, "team_domain": {"example"}, "channel_id": {"C0APPROVE1"},
		"channel_name": {"approvals"}, "user_id": {"U0ALICE001"}, "user_name": {"alice"}, "command": {"/access"},
		"text": {"help"}, "api_app_id": {"A0APP00001"}, "is_enterprise_install": {"false"},
		"response_url": {"https://hooks.slack.com/commands/T0TEAM0001/1234567890/abcdefABCDEF"}, "trigger_id": {"1234567890.123456.abcdef"},
	}.Encode()
	for _, bb := range []struct {
		name  string
		parse func(r *http.Request) error
	}{
		{"tokken", func(r *http.Request) error { _, _, err := parseSlashCommand(r); return err }},
		{"net-http+slack-go", func(r *http.Request) error { _, err := slack.SlashCommandParse(r); return err }},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bb.parse(formRequest(body, formCT)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzForm checks the form decoding against net/http's on arbitrary
// bodies and content types.
func FuzzForm(f *testing.F) {
	f.Add("command=%2Faccess&text=prod-ssm+30m+x&user_id=U1&trigger_id=1.2", formCT)
	f.Add("payload=%7B%22type%22%3A%22block_actions%22%7D", formCT)
	f.Add("a=%zz;b&&c=1", "")
	f.Add("ssl_check=1", "application/x-www-form-urlencoded; charset=utf-8")
	f.Add("x=1", "multipart/form-data; boundary=x")
	f.Fuzz(func(t *testing.T, body, ct string) { sameFormAsNetHTTP(t, body, ct) })
}
