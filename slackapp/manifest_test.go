package slackapp

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/httpapi"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/handlers/slacksig"
)

// tokkenCommands are the slash commands tokken registers, with the
// should_escape each needs (docs/slack-app.md, "Slash commands", says why).
var tokkenCommands = map[string]bool{
	"/access":  false,
	"/domain":  false,
	"/alerts":  false,
	"/release": false,
}

// routeFor maps each manifest URL field to the route that must serve it.
var routeFor = map[string]string{
	"features.slash_commands.url":                     RouteCommands,
	"settings.interactivity.request_url":              RouteInteractions,
	"settings.interactivity.message_menu_options_url": RouteOptions,
	"settings.event_subscriptions.request_url":        RouteEvents,
}

type variant struct {
	name       string
	data       []byte
	socketMode bool
}

func variants() []variant {
	return []variant{
		{"manifest.yaml", HTTPManifest(), false},
		{"manifest.socket-mode.yaml", SocketModeManifest(), true},
	}
}

func mustParse(t *testing.T, name string, data []byte) Manifest {
	t.Helper()
	m, err := Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// urlFields walks the manifest as a YAML tree and returns every string that
// looks like a URL, keyed by its field path (list indexes left out), so a URL
// added in any field is checked, not only the fields this test knows.
func urlFields(t *testing.T, data []byte) map[string][]string {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				walk(n.Content[i+1], p)
			}
		case yaml.ScalarNode:
			if strings.Contains(n.Value, "://") || strings.Contains(n.Value, "TOKKEN_HOST") {
				out[path] = append(out[path], n.Value)
			}
		}
	}
	walk(&root, "")
	return out
}

func TestManifestsRequiredFields(t *testing.T) {
	hex := regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			m := mustParse(t, v.name, v.data)
			if m.Metadata.MajorVersion != 1 {
				t.Errorf("_metadata.major_version = %d, want 1", m.Metadata.MajorVersion)
			}
			d := m.DisplayInformation
			if n := utf8.RuneCountInString(d.Name); n == 0 || n > 35 {
				t.Errorf("display_information.name %q: want 1 to 35 characters", d.Name)
			}
			if n := utf8.RuneCountInString(d.Description); n == 0 || n > 140 {
				t.Errorf("display_information.description: %d characters, want 1 to 140", n)
			}
			if !hex.MatchString(d.BackgroundColor) {
				t.Errorf("display_information.background_color %q: want #rrggbb", d.BackgroundColor)
			}
			if b := m.Features.BotUser; b == nil || b.DisplayName == "" || len(b.DisplayName) > 80 {
				t.Errorf("features.bot_user.display_name missing or too long: %+v", b)
			}
			if h := m.Features.AppHome; h == nil || !h.MessagesTabEnabled {
				t.Errorf("features.app_home.messages_tab_enabled must be true: credentials are delivered by DM")
			}
			if len(m.OAuthConfig.Scopes.User) != 0 || len(m.OAuthConfig.RedirectURLs) != 0 {
				t.Errorf("user scopes or redirect URLs requested: tokken acts only as its bot")
			}
			s := m.Settings
			if s.Interactivity == nil || !s.Interactivity.IsEnabled {
				t.Errorf("settings.interactivity.is_enabled must be true (buttons, modals, external selects)")
			}
			for field, p := range map[string]*bool{"org_deploy_enabled": s.OrgDeployEnabled, "token_rotation_enabled": s.TokenRotationEnabled} {
				if p == nil || *p {
					t.Errorf("settings.%s must be set to false", field)
				}
			}
			if s.SocketModeEnabled == nil || *s.SocketModeEnabled != v.socketMode {
				t.Errorf("settings.socket_mode_enabled = %v, want %v", s.SocketModeEnabled, v.socketMode)
			}
		})
	}
}

func TestManifestsSlashCommands(t *testing.T) {
	want := slices.Sorted(func(yield func(string) bool) {
		for c := range tokkenCommands {
			if !yield(c) {
				return
			}
		}
	})
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			m := mustParse(t, v.name, v.data)
			if got := m.Commands(); !slices.Equal(got, want) {
				t.Fatalf("slash commands = %v, want %v", got, want)
			}
			for _, c := range m.Features.SlashCommands {
				// One description style: an imperative phrase starting
				// with a capital letter, short, no trailing period.
				first, _ := utf8.DecodeRuneInString(c.Description)
				switch {
				case !unicode.IsUpper(first):
					t.Errorf("%s: description %q must start with a capital letter", c.Command, c.Description)
				case strings.HasSuffix(c.Description, "."):
					t.Errorf("%s: description %q must not end with a period", c.Command, c.Description)
				case utf8.RuneCountInString(c.Description) > 100 || strings.ContainsAny(c.Description, "\n`"):
					t.Errorf("%s: description %q must be one plain line of at most 100 characters", c.Command, c.Description)
				}
				if c.UsageHint == "" || utf8.RuneCountInString(c.UsageHint) > 100 || !strings.Contains(c.UsageHint, "help") {
					t.Errorf("%s: usage_hint %q must be set, at most 100 characters, and mention help", c.Command, c.UsageHint)
				}
				if c.ShouldEscape == nil {
					t.Errorf("%s: should_escape must be set explicitly", c.Command)
				} else if *c.ShouldEscape != tokkenCommands[c.Command] {
					t.Errorf("%s: should_escape = %v, want %v", c.Command, *c.ShouldEscape, tokkenCommands[c.Command])
				}
			}
		})
	}
}

func TestHTTPManifestURLs(t *testing.T) {
	fields := urlFields(t, HTTPManifest())
	if len(fields) == 0 {
		t.Fatal("manifest.yaml has no URLs")
	}
	for path, urls := range fields {
		route, ok := routeFor[path]
		if !ok {
			t.Errorf("%s holds URLs %v, but no tokken route is assigned to that field", path, urls)
			continue
		}
		for _, u := range urls {
			if u != strings.TrimSuffix(Placeholder, "/")+route {
				t.Errorf("%s = %q, want %s%s", path, u, Placeholder, strings.TrimPrefix(route, "/"))
			}
		}
	}
	m := mustParse(t, "manifest.yaml", HTTPManifest())
	for _, c := range m.Features.SlashCommands {
		if c.URL == "" {
			t.Errorf("%s has no url: Slack would not know where to send it", c.Command)
		}
	}
	if i := m.Settings.Interactivity; i == nil || i.RequestURL == "" || i.MessageMenuOptionsURL == "" {
		t.Errorf("interactivity needs request_url and message_menu_options_url (external selects): %+v", i)
	}
}

func TestSocketModeManifestHasNoURLs(t *testing.T) {
	if fields := urlFields(t, SocketModeManifest()); len(fields) != 0 {
		t.Errorf("manifest.socket-mode.yaml must not hold URLs (Slack uses the socket): %v", fields)
	}
}

// TestVariantsAgree keeps the two manifests identical except for what
// must differ: names, URLs and socket_mode_enabled.
func TestVariantsAgree(t *testing.T) {
	normalize := func(m Manifest) Manifest {
		m.DisplayInformation.Name = ""
		if m.Features.BotUser != nil {
			b := *m.Features.BotUser
			b.DisplayName = ""
			m.Features.BotUser = &b
		}
		cmds := slices.Clone(m.Features.SlashCommands)
		for i := range cmds {
			cmds[i].URL = ""
		}
		m.Features.SlashCommands = cmds
		if m.Settings.Interactivity != nil {
			i := *m.Settings.Interactivity
			i.RequestURL, i.MessageMenuOptionsURL = "", ""
			m.Settings.Interactivity = &i
		}
		if m.Settings.EventSubscriptions != nil {
			e := *m.Settings.EventSubscriptions
			e.RequestURL = ""
			m.Settings.EventSubscriptions = &e
		}
		m.Settings.SocketModeEnabled = nil
		return m
	}
	h := normalize(mustParse(t, "manifest.yaml", HTTPManifest()))
	s := normalize(mustParse(t, "manifest.socket-mode.yaml", SocketModeManifest()))
	if !reflect.DeepEqual(h, s) {
		t.Errorf("manifests differ beyond names, URLs and socket mode:\n http:   %+v\n socket: %+v", h, s)
	}
}

// documentedScopes reads the scope table of docs/slack-app.md: the rows
// "| `scope` | why | methods |" under "## Bot token scopes".
func documentedScopes(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/slack-app.md")
	if err != nil {
		t.Fatalf("read the scope documentation: %v", err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Bot token scopes\n")
	if !ok {
		t.Fatal(`docs/slack-app.md has no "## Bot token scopes" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	section, _, _ = strings.Cut(section, "\n### ")
	row := regexp.MustCompile("(?m)^\\| `([a-z.:_]+)` \\| ([^|]+)\\|")
	var scopes []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		if strings.TrimSpace(m[2]) == "" {
			t.Errorf("scope %s is documented without a reason", m[1])
		}
		scopes = append(scopes, m[1])
	}
	if len(scopes) == 0 {
		t.Fatal("no scope rows found under \"## Bot token scopes\"")
	}
	return scopes
}

func TestScopesAreDocumented(t *testing.T) {
	documented := documentedScopes(t)
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			requested := mustParse(t, v.name, v.data).OAuthConfig.Scopes.Bot
			for _, s := range requested {
				if !slices.Contains(documented, s) {
					t.Errorf("bot scope %q is not in the allow-list in docs/slack-app.md: add a row saying why tokken needs it", s)
				}
			}
			for _, s := range documented {
				if !slices.Contains(requested, s) {
					t.Errorf("docs/slack-app.md documents %q, which the manifest does not request", s)
				}
			}
			if !slices.Contains(requested, "commands") {
				t.Error(`bot scopes lack "commands": the slash commands would not install`)
			}
			if slices.Contains(requested, "users:read.email") && !slices.Contains(requested, "users:read") {
				t.Error("users:read.email must be requested with users:read")
			}
			if len(slices.Compact(slices.Sorted(slices.Values(requested)))) != len(requested) {
				t.Errorf("duplicate bot scopes: %v", requested)
			}
		})
	}
}

// stubStore and stubQueue satisfy the Router's dependencies; the requests
// below are rejected before anything would call them.
type stubStore struct{ bot.Store }
type stubQueue struct{}

func (stubQueue) Enqueue(context.Context, bot.Job) error { return nil }

// TestManifestRoutesAreServed sends an unsigned POST to every path the
// rendered HTTPS manifest names through tokken's real HTTP handler: each
// must be a Slack route, refused 401 by signature verification (a missing
// route would be 404).
func TestManifestRoutesAreServed(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := router.New(router.Deps{Store: stubStore{}, Queue: stubQueue{}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(httpapi.Deps{Router: rt, Verifier: slacksig.Verifier{Secret: []byte("test-secret")}, Log: log})

	const base = "https://abcdefghij.lambda-url.eu-west-1.on.aws/"
	rendered, err := Render(base)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{"/slack/no-such-route": false} // the control: proves a 404 is seen
	for _, urls := range urlFields(t, rendered) {
		for _, raw := range urls {
			u, err := url.Parse(raw)
			if err != nil || !strings.HasPrefix(raw, base) {
				t.Errorf("rendered URL %q is not under %s", raw, base)
				continue
			}
			paths[u.Path] = true
		}
	}
	for path, served := range paths {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader("command=%2Faccess")))
		switch {
		case served && rec.Code != http.StatusUnauthorized:
			t.Errorf("POST %s (unsigned) = %d, want 401 from a verified Slack route", path, rec.Code)
		case !served && rec.Code != http.StatusNotFound:
			t.Errorf("POST %s = %d, want 404 for a route tokken does not serve", path, rec.Code)
		}
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		base    string
		wantErr string
		prefix  string
	}{
		{base: "https://abcdefghij.lambda-url.eu-west-1.on.aws/", prefix: "https://abcdefghij.lambda-url.eu-west-1.on.aws/slack/"},
		{base: "https://tokken.example.com", prefix: "https://tokken.example.com/slack/"},
		{base: "https://tokken.example.com/prod/", prefix: "https://tokken.example.com/prod/slack/"},
		{base: "http://tokken.example.com/", wantErr: "https"},
		{base: "https:///slack", wantErr: "https://host/"},
		{base: "https://tokken.example.com/?x=1", wantErr: "no query"},
		{base: "https://user:pw@tokken.example.com/", wantErr: "credentials"},
		{base: "://", wantErr: "missing protocol scheme"},
	}
	for _, tc := range tests {
		t.Run(tc.base, func(t *testing.T) {
			out, err := Render(tc.base)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Render(%q) error = %v, want one mentioning %q", tc.base, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render(%q): %v", tc.base, err)
			}
			if strings.Contains(string(out), "TOKKEN_HOST") {
				t.Error("placeholder left in the rendered manifest")
			}
			mustParse(t, "rendered", out)
			n := 0
			for path, urls := range urlFields(t, out) {
				for _, u := range urls {
					n++
					if !strings.HasPrefix(u, tc.prefix) {
						t.Errorf("%s = %q, want it under %s", path, u, tc.prefix)
					}
				}
			}
			if n == 0 {
				t.Error("rendered manifest has no URLs")
			}
		})
	}
}

func TestParseRejectsUnknownFields(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"misspelt field", "display_information:\n  name: x\nsettings:\n  socket_mode_enable: true\n", "socket_mode_enable"},
		{"two documents", "display_information:\n  name: x\n---\ndisplay_information:\n  name: y\n", "more than one"},
		{"not a mapping", "- a\n- b\n", "cannot unmarshal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestDocumentedSedMatchesRender runs the sed command docs/slack-app.md
// gives for filling in the URL and checks it produces what Render does.
func TestDocumentedSedMatchesRender(t *testing.T) {
	if _, err := exec.LookPath("sed"); err != nil {
		t.Skip("sed not installed")
	}
	doc, err := os.ReadFile("../docs/slack-app.md")
	if err != nil {
		t.Fatal(err)
	}
	const docOut = "/tmp/tokken-manifest.yaml"
	var cmd string
	for line := range strings.Lines(string(doc)) {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "sed ") && strings.Contains(l, "slackapp/manifest.yaml") {
			cmd = l
		}
	}
	if cmd == "" || !strings.HasSuffix(cmd, "> "+docOut) {
		t.Fatalf("docs/slack-app.md has no `sed … slackapp/manifest.yaml > %s` line (found %q)", docOut, cmd)
	}
	out := filepath.Join(t.TempDir(), "manifest.yaml")
	const base = "https://abcdefghij.lambda-url.eu-west-1.on.aws/"
	sh := exec.Command("sh", "-c", strings.TrimSuffix(cmd, docOut)+`"$OUT"`)
	sh.Dir = ".."
	sh.Env = append(os.Environ(), "URL="+base, "OUT="+out)
	if msg, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Render(base)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("the documented sed command and Render disagree:\nsed:\n%s\nRender:\n%s", got, want)
	}
}
