package alert

import (
	"testing"
	"time"
)

func hostAlert(status Status, open bool, host string, roles ...Role) Alert {
	return Alert{
		Source: SourceMackerel, Key: "mackerel:a1", Kind: KindAlert, Org: "acme",
		Status: status, Open: open, Monitor: "CPU %", MonitorType: "host",
		Host: &Host{ID: "h1", Name: host, Roles: roles},
	}
}

func testRoutes() *Routes {
	return &Routes{
		File: "policies/routes.yaml",
		Environments: []EnvRule{
			{Name: "production", Line: 3, Accounts: []string{"111111111111"}},
			{Name: "sandbox", Line: 4, Tags: map[string]string{"team": "lab-*"}},
		},
		Rules: []Rule{
			{Line: 10, Match: Match{Monitors: []string{"*test*"}}, Drop: true},
			{Line: 11, Match: Match{Environments: []string{"staging"}}, Channel: "CSTG"},
			{Line: 12, Match: Match{Environments: []string{"production"}, Statuses: []Status{StatusCritical}}, Channel: "CPROD", Mention: "SONCALL"},
			{Line: 13, Match: Match{Roles: []string{"shop:db*"}}, Channel: "CDB", Mention: "SDBA"},
			{Line: 14, Match: Match{Statuses: []Status{StatusCritical}}, Channel: "CCRIT", Mention: "here"},
			{Line: 15, Match: Match{Sources: []Source{SourceCloudWatch}, Hosts: []string{"i-0abc*"}}, Channel: "CEC2"},
			{Line: 16, Match: Match{Sources: []Source{SourceTokken}, Monitors: []string{"noise"}}, Drop: true},
		},
		Default:     Rule{Channel: "CALL"},
		EnvChannels: map[string]string{"development": "CDEV"},
	}
}

func TestRoute(t *testing.T) {
	r := testRoutes()
	shopWeb := Role{Service: "shop", Role: "web"}
	shopStg := Role{Service: "shop-stg", Role: "web"}
	shopDB := Role{Service: "shop", Role: "db-primary"}
	cwAlarm := Alert{Source: SourceCloudWatch, Key: "cloudwatch:arn", Status: StatusCritical, Open: true,
		Monitor: "HighCPU", Account: "222222222222", Host: &Host{ID: "i-0abcdef1234567890"}}
	tests := []struct {
		name string
		a    Alert
		want Decision
	}{
		{"monitor pattern drops", func() Alert { a := hostAlert(StatusCritical, true, "app01"); a.Monitor = "my TEST monitor"; return a }(),
			Decision{Drop: true, Rule: "policies/routes.yaml:10"}},
		{"staging by service token, no mention rule",
			hostAlert(StatusCritical, true, "app01", shopStg),
			Decision{Channel: "CSTG", Environment: "staging", Rule: "policies/routes.yaml:11"}},
		{"production critical pages on-call",
			func() Alert { a := hostAlert(StatusCritical, true, "prod-app01", shopWeb); return a }(),
			Decision{Channel: "CPROD", Mention: "SONCALL", Environment: "production", Rule: "policies/routes.yaml:12"}},
		{"production warning falls through to default",
			hostAlert(StatusWarning, true, "prod-app01", shopWeb),
			Decision{Channel: "CALL", Environment: "production", Rule: "default"}},
		{"role service:pattern",
			hostAlert(StatusWarning, true, "db01", shopDB),
			Decision{Channel: "CDB", Mention: "SDBA", Rule: "policies/routes.yaml:13"}},
		{"closed alert never mentions",
			hostAlert(StatusOK, false, "db01", shopDB),
			Decision{Channel: "CDB", Rule: "policies/routes.yaml:13", Note: "mention suppressed: alert is closed"}},
		{"critical with unknown env mentions",
			hostAlert(StatusCritical, true, "app01", shopWeb),
			Decision{Channel: "CCRIT", Mention: "here", Rule: "policies/routes.yaml:14"}},
		{"cloudwatch by instance id, critical rule first",
			cwAlarm,
			Decision{Channel: "CCRIT", Mention: "here", Rule: "policies/routes.yaml:14"}},
		{"cloudwatch warning by instance id",
			func() Alert { a := cwAlarm; a.Status = StatusWarning; return a }(),
			Decision{Channel: "CEC2", Rule: "policies/routes.yaml:15"}},
		{"account rule gives production",
			func() Alert { a := cwAlarm; a.Account = "111111111111"; return a }(),
			Decision{Channel: "CPROD", Mention: "SONCALL", Environment: "production", Rule: "policies/routes.yaml:12"}},
		{"tag rule beats tag keys",
			func() Alert {
				a := cwAlarm
				a.Status = StatusWarning
				a.Tags = map[string]string{"Team": "Lab-3", "env": "prod"}
				return a
			}(),
			Decision{Channel: "CEC2", Environment: "sandbox", Rule: "policies/routes.yaml:15"}},
		{"env tag normalised",
			func() Alert { a := cwAlarm; a.Tags = map[string]string{"Environment": "STG"}; return a }(),
			Decision{Channel: "CSTG", Environment: "staging", Rule: "policies/routes.yaml:11"}},
		{"default per environment channel",
			hostAlert(StatusWarning, true, "dev-app01"),
			Decision{Channel: "CDEV", Environment: "development", Rule: "default for development"}},
		{"tokken alert not dropped by generic monitor drop",
			Operational("my test check", "r-1", StatusCritical, "boom", time.Unix(0, 0)),
			Decision{Channel: "CCRIT", Mention: "here", Rule: "policies/routes.yaml:14"}},
		{"tokken alert dropped when named",
			Operational("noise", "x", StatusWarning, "meh", time.Unix(0, 0)),
			Decision{Drop: true, Rule: "policies/routes.yaml:16"}},
		{"explicit environment overrides derivation",
			func() Alert { a := hostAlert(StatusWarning, true, "prod-app01"); a.Environment = "Stage"; return a }(),
			Decision{Channel: "CSTG", Environment: "staging", Rule: "policies/routes.yaml:11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Route(tt.a); got != tt.want {
				t.Errorf("Route() = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

func TestRouteQuietEnvironment(t *testing.T) {
	stg := hostAlert(StatusCritical, true, "stg-app01")
	tests := []struct {
		name  string
		rules []Rule
		quiet []string
		want  Decision
	}{
		{"broad critical rule does not page staging",
			[]Rule{{Line: 1, Match: Match{Statuses: []Status{StatusCritical}}, Channel: "C1", Mention: "SONCALL"}}, nil,
			Decision{Channel: "C1", Environment: "staging", Rule: "r:1", Note: "mention suppressed: quiet environment staging"}},
		{"wildcard environment is not explicit",
			[]Rule{{Line: 1, Match: Match{Environments: []string{"*"}}, Channel: "C1", Mention: "SONCALL"}}, nil,
			Decision{Channel: "C1", Environment: "staging", Rule: "r:1", Note: "mention suppressed: quiet environment staging"}},
		{"rule naming staging may mention",
			[]Rule{{Line: 1, Match: Match{Environments: []string{"stg"}}, Channel: "C1", Mention: "SQA"}}, nil,
			Decision{Channel: "C1", Mention: "SQA", Environment: "staging", Rule: "r:1"}},
		{"guard disabled",
			[]Rule{{Line: 1, Channel: "C1", Mention: "SONCALL"}}, []string{},
			Decision{Channel: "C1", Mention: "SONCALL", Environment: "staging", Rule: "r:1"}},
		{"default mention suppressed too",
			nil, nil,
			Decision{Channel: "CD", Environment: "staging", Rule: "default", Note: "mention suppressed: quiet environment staging"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Routes{File: "r", Rules: tt.rules, Quiet: tt.quiet, Default: Rule{Channel: "CD", Mention: "SALL"}}
			if got := r.Route(stg); got != tt.want {
				t.Errorf("Route() = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

func TestRouteNotice(t *testing.T) {
	r := testRoutes()
	n := Notice{Source: SourceMackerel, Kind: KindHostRetire, Org: "acme",
		Host: &Host{Name: "db01", Roles: []Role{{Service: "shop", Role: "db-primary"}}}}
	want := Decision{Channel: "CDB", Rule: "policies/routes.yaml:13", Note: "mention suppressed: notices never mention"}
	if got := r.RouteNotice(n); got != want {
		t.Errorf("RouteNotice() = %+v, want %+v", got, want)
	}
	// A notice has no status: the status-only rule 14 must not catch it.
	n.Host = &Host{Name: "app01"}
	want = Decision{Channel: "CALL", Rule: "default"}
	if got := r.RouteNotice(n); got != want {
		t.Errorf("RouteNotice() = %+v, want %+v", got, want)
	}
}

func TestRouteNilRoutes(t *testing.T) {
	var r *Routes
	got := r.Route(hostAlert(StatusCritical, true, "stg-x"))
	if got.Channel != "" || got.Drop || got.Environment != "staging" {
		t.Errorf("nil Routes: %+v", got)
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"web", "WEB", true},
		{"web", "web1", false},
		{"web*", "web-01", true},
		{"*-stg", "shop-stg", true},
		{"*-stg", "shop-stg2", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c*", "xxaxxcxxbxx", false},
		{"i-0abc*", "i-0abcdef", true},
		{"ロール*", "ロール名", true},
		{"**", "x", true},
	}
	for _, tt := range tests {
		if got := Glob(tt.pat, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

func TestEnvironmentFromNames(t *testing.T) {
	tests := []struct {
		a    Alert
		want string
	}{
		{hostAlert(StatusOK, true, "app01", Role{Service: "Shop", Role: "prod-web"}), "production"},
		{hostAlert(StatusOK, true, "app01", Role{Service: "shop_development", Role: "web"}), "development"},
		{hostAlert(StatusOK, true, "product01"), ""}, // "product" is not "prod"
		{hostAlert(StatusOK, true, "web.stg.example.com"), "staging"},
		{Alert{Service: "billing-staging"}, "staging"},
		{Alert{Tags: map[string]string{"Stage": "qa"}}, "qa"},
		{Alert{}, ""},
	}
	var r *Routes
	for _, tt := range tests {
		if got := r.Environment(tt.a); got != tt.want {
			t.Errorf("Environment(%+v) = %q, want %q", tt.a.Host, got, tt.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in   string
		want Status
		ok   bool
	}{
		{"critical", StatusCritical, true},
		{"CRITICAL", StatusCritical, true},
		{" Warning ", StatusWarning, true},
		{"OK", StatusOK, true},
		{"UNKNOWN", StatusUnknown, true},
		{"crit", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := ParseStatus(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseStatus(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if StatusUnknown.Rank() <= StatusCritical.Rank() || StatusCritical.Rank() <= StatusWarning.Rank() || StatusWarning.Rank() <= StatusOK.Rank() {
		t.Error("Rank order wrong")
	}
	if Status("").Word() != "UNKNOWN" || StatusWarning.Word() != "WARNING" {
		t.Error("Word wrong")
	}
}

func TestAlertHelpers(t *testing.T) {
	open := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	a := Alert{OpenedAt: open, ClosedAt: open.Add(12 * time.Minute), Host: &Host{ID: "i-0123456789abcdef0"}}
	if a.Duration() != 12*time.Minute {
		t.Errorf("Duration = %v", a.Duration())
	}
	if a.InstanceID() != "i-0123456789abcdef0" || a.Target() != "i-0123456789abcdef0" {
		t.Errorf("InstanceID/Target = %q/%q", a.InstanceID(), a.Target())
	}
	a.Host = &Host{ID: "22D4abc", Name: "app01"}
	if a.InstanceID() != "" || a.Target() != "app01" {
		t.Errorf("mackerel host: InstanceID/Target = %q/%q", a.InstanceID(), a.Target())
	}
	a.ClosedAt = open.Add(-time.Second)
	if a.Duration() != 0 {
		t.Error("negative duration not zero")
	}
	op := Operational("revoke_failed", "r-1", StatusOK, "fixed", open)
	if op.Open || op.ClosedAt != open || op.Key != "tokken:revoke_failed:r-1" {
		t.Errorf("Operational OK = %+v", op)
	}
}
