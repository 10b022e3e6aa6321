package policies

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot/alert"
)

// TestShippedRoutes loads policies/routes.yaml as shipped and checks that it
// does what its comments promise.
func TestShippedRoutes(t *testing.T) {
	routes, err := LoadRoutes(".")
	if err != nil {
		t.Fatal(err)
	}
	host := func(name string, st alert.Status, roles ...alert.Role) alert.Alert {
		return alert.Alert{Source: alert.SourceMackerel, Key: "mackerel:x", Org: "acme", Status: st, Open: st != alert.StatusOK,
			Monitor: "CPU %", Host: &alert.Host{Name: name, Roles: roles}}
	}
	cw := func(account string, st alert.Status) alert.Alert {
		return alert.Alert{Source: alert.SourceCloudWatch, Key: "cloudwatch:arn", Account: account, Status: st, Open: true, Monitor: "HighCPU"}
	}
	tests := []struct {
		name string
		a    alert.Alert
		want alert.Decision
	}{
		{"prod critical pages on-call", cw("111111111111", alert.StatusCritical),
			alert.Decision{Channel: "C0PRODALERTS", Mention: "S0ONCALL", Environment: "production", Rule: "@production critical pages on-call"}},
		{"prod warning does not page", cw("111111111111", alert.StatusWarning),
			alert.Decision{Channel: "C0PRODALERTS", Environment: "production", Rule: "@the rest of production"}},
		{"staging account to its own channel", cw("222222222222", alert.StatusCritical),
			alert.Decision{Channel: "C0STAGING", Environment: "staging", Rule: "@staging has its own channel, no pages"}},
		{"staging by role name, no mention", host("web01", alert.StatusCritical, alert.Role{Service: "shop", Role: "stg-web"}),
			alert.Decision{Channel: "C0STAGING", Environment: "staging", Rule: "@staging has its own channel, no pages"}},
		{"prod by host name", host("prod-web01", alert.StatusUnknown),
			alert.Decision{Channel: "C0PRODALERTS", Mention: "S0ONCALL", Environment: "production", Rule: "@production critical pages on-call"}},
		{"development default channel", host("dev-web01", alert.StatusCritical),
			alert.Decision{Channel: "C0DEVALERTS", Environment: "development", Rule: "default for development"}},
		{"unknown environment default", host("web01", alert.StatusCritical),
			alert.Decision{Channel: "C0ALERTS", Rule: "default"}},
		{"test monitor dropped", func() alert.Alert { a := host("prod-web01", alert.StatusCritical); a.Monitor = "disk (TEST)"; return a }(),
			alert.Decision{Drop: true, Environment: "production", Rule: "@test monitors are noise"}},
		{"tokken failure pages operators", alert.Operational("revoke_failed", "r-1", alert.StatusCritical, "boom", time.Unix(0, 0)),
			alert.Decision{Channel: "C0TOKKENOPS", Mention: "S0TOKKENOPS", Rule: "@tokken's own failures go to the operators, loudly"}},
	}
	// Rules are named in the want table as "@<route name>" so that editing
	// the file's comments does not break the test.
	lineOf := func(name string) string {
		for _, r := range routes.Rules {
			if r.Name == name {
				return fmt.Sprintf("%s:%d", routes.File, r.Line)
			}
		}
		t.Fatalf("no route named %q in routes.yaml", name)
		return ""
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if name, ok := strings.CutPrefix(tt.want.Rule, "@"); ok {
				tt.want.Rule = lineOf(name)
			}
			if got := routes.Route(tt.a); got != tt.want {
				t.Errorf("Route() = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

func TestLoadRoutesMissing(t *testing.T) {
	_, err := LoadRoutes(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
}

func TestParseRoutes(t *testing.T) {
	src := `default:
  channel: C0ALL
  mention: here
quiet: []
tag_keys: [Env]
environments:
  - name: Prod
    tag: {team: "core-*"}
environment_channels:
  stg: C0STG
routes:
  - name: db
    match:
      role: ["shop:db*"]
      status: CRITICAL
      source: [Mackerel]
    channel: G0DB
    mention: U024BE7LH
`
	routes, err := ParseRoutes("policies/routes.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if routes.File != "policies/routes.yaml" || routes.Default.Channel != "C0ALL" || routes.Default.Mention != "here" {
		t.Errorf("default = %+v", routes.Default)
	}
	if routes.Quiet == nil || len(routes.Quiet) != 0 {
		t.Errorf("quiet: [] must disable the guard, got %#v", routes.Quiet)
	}
	if len(routes.TagKeys) != 1 || routes.EnvChannels["staging"] != "C0STG" {
		t.Errorf("tag keys %v env channels %v", routes.TagKeys, routes.EnvChannels)
	}
	if e := routes.Environments[0]; e.Name != "production" || e.Tags["team"] != "core-*" || e.Line != 7 {
		t.Errorf("env rule = %+v", e)
	}
	r := routes.Rules[0]
	if r.Line != 12 || r.Name != "db" || r.Channel != "G0DB" || r.Mention != "U024BE7LH" ||
		len(r.Match.Statuses) != 1 || r.Match.Statuses[0] != alert.StatusCritical || r.Match.Sources[0] != alert.SourceMackerel {
		t.Errorf("rule = %+v", r)
	}
}

func TestParseRoutesProblems(t *testing.T) {
	const head = "default:\n  channel: C0ALL\nroutes:\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{"unknown status", head + "  - match:\n      status: [critical, crit]\n    channel: C0X\n",
			[]string{`policies/routes.yaml:5: unknown status "crit" (allowed: ok, warning, critical, unknown)`}},
		{"unknown source", head + "  - match: {source: datadog}\n    channel: C0X\n",
			[]string{`policies/routes.yaml:4: unknown source "datadog" (allowed: mackerel, cloudwatch, tokken)`}},
		{"unknown match key", head + "  - match:\n      severity: critical\n    channel: C0X\n",
			[]string{`policies/routes.yaml:5: unknown key "severity" in match (allowed: source, org, service, role, host, monitor, environment, status)`}},
		{"typo in route key", head + "  - match: {}\n    chanel: C0X\n",
			[]string{`policies/routes.yaml:5: unknown key "chanel" in route`, `policies/routes.yaml:4: route needs a channel (or drop: true)`}},
		{"channel name instead of id", head + "  - channel: '#alerts'\n",
			[]string{`policies/routes.yaml:4: channel "#alerts" must be a Slack channel id (C… or G…), not a name`}},
		{"bad mention", head + "  - channel: C0X\n    mention: '@oncall'\n",
			[]string{`policies/routes.yaml:5: mention "@oncall" must be a Slack user group id (S…), a user id (U…), here or channel`}},
		{"drop and channel", head + "  - drop: true\n    channel: C0X\n",
			[]string{`policies/routes.yaml:4: a route either drops (drop: true) or names a channel, not both`}},
		{"drop not bool", head + "  - drop: yes please\n",
			[]string{`policies/routes.yaml:4: drop must be true or false`}},
		{"empty pattern", head + "  - match: {host: ''}\n    channel: C0X\n",
			[]string{`policies/routes.yaml:4: empty host pattern`}},
		{"routes not a list", head + "  name: x\n",
			[]string{`policies/routes.yaml:4: routes must be a list`}},
		{"default missing", "routes: []\n",
			[]string{`policies/routes.yaml:1: default is required`}},
		{"default without channel", "default: {mention: here}\n",
			[]string{`policies/routes.yaml:1: default needs a channel`}},
		{"unknown top key", "default: {channel: C0A}\nroute: []\n",
			[]string{`policies/routes.yaml:2: unknown key "route" in routes.yaml`}},
		{"env rule without condition", "default: {channel: C0A}\nenvironments:\n  - name: prod\n",
			[]string{`policies/routes.yaml:3: environment "production" has no condition`}},
		{"env rule without name", "default: {channel: C0A}\nenvironments:\n  - account: ['1']\n",
			[]string{`policies/routes.yaml:3: environment needs a name`}},
		{"env channel not id", "default: {channel: C0A}\nenvironment_channels: {staging: stg}\n",
			[]string{`policies/routes.yaml:2: environment_channels.staging "stg" must be a Slack channel id`}},
		{"duplicate key", "default: {channel: C0A}\ndefault: {channel: C0B}\n",
			[]string{`policies/routes.yaml:2: duplicate key "default" (first at line 1)`}},
		{"syntax error", "default:\n  channel: C0A\nroutes:\n  - match: {status: [critical}\n",
			[]string{`policies/routes.yaml:4: invalid YAML`}},
		{"empty file", "", []string{`policies/routes.yaml: empty file`}},
		{"not a mapping", "- a\n", []string{`policies/routes.yaml:1: expected a mapping`}},
		{"several problems at once", head + "  - match: {status: crit}\n    channel: nope\n  - mention: bad\n",
			[]string{`:4: unknown status "crit"`, `:5: channel "nope"`, `:6: mention "bad"`, `:6: route needs a channel`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes, err := ParseRoutes("policies/routes.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("no error; routes %+v", routes)
			}
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("error %T is not Problems", err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", msg, w)
				}
			}
			if len(probs) < len(tt.want) {
				t.Errorf("%d problems, want at least %d:\n%s", len(probs), len(tt.want), msg)
			}
		})
	}
}

func FuzzParseRoutes(f *testing.F) {
	f.Add([]byte("default:\n  channel: C0ALL\nroutes:\n  - match: {status: critical}\n    channel: C0X\n"))
	f.Add([]byte("default: &d {channel: C0A}\nroutes: [*d]\nenvironments: [{name: x, tag: {a: b}}]\n"))
	f.Add([]byte("quiet: ~\ntag_keys: [a, [b]]\nenvironment_channels: []\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		routes, err := ParseRoutes(filepath.Join("policies", RoutesFile), data)
		if err == nil && routes.Default.Channel == "" {
			t.Fatal("routes accepted without a default channel")
		}
	})
}
