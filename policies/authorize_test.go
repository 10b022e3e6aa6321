package policies

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
)

// loadExample loads the shipped example set, naming files as they are named
// when tokken runs from the repository root.
func loadExample(t testing.TB) *Set {
	t.Helper()
	s, probs := loadFS(os.DirFS("."), "policies")
	if len(probs) > 0 {
		t.Fatalf("the shipped example set does not load:\n%v", probs)
	}
	return s
}

var (
	tue10 = time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC) // a Tuesday, working hours
	tue22 = time.Date(2026, 3, 3, 22, 0, 0, 0, time.UTC) // a Tuesday night
	sat10 = time.Date(2026, 3, 7, 10, 0, 0, 0, time.UTC) // a Saturday
	// jst18 is 09:00 UTC on a Tuesday: rules see UTC whatever the zone.
	jst18 = time.Date(2026, 3, 3, 18, 0, 0, 0, time.FixedZone("JST", 9*3600))
)

func user(id string) bot.Principal { return bot.Principal{ID: id} }

func prodBox(id string) bot.Target {
	return bot.Target{ID: id, Tags: map[string]string{"Env": "prod", "Name": "web-01"}}
}

func devBox(id string) bot.Target {
	return bot.Target{ID: id, Tags: map[string]string{"Env": "dev"}}
}

const (
	i1 = "i-0123456789abcdef0"
	i2 = "i-0fedcba9876543210"
)

// Reasons as the example rules produce them.
const (
	rSRERequest   = "permit policies/access.cedar:18 (sre-request)"
	rSREApprove   = "permit policies/access.cedar:27 (sre-approve)"
	rDevStaging   = "permit policies/access.cedar:36 (dev-staging)"
	rOncallBG     = "permit policies/access.cedar:47 (oncall-break-glass)"
	rAlerts       = "permit policies/alerts.cedar:7 (alert-responders)"
	rWinDomain    = "permit policies/domain.cedar:10 (windows-admins-domain)"
	rWinDomainPrd = "permit policies/domain.cedar:19 (windows-admins-domain-prod)"
	rDomainApprov = "permit policies/domain.cedar:29 (domain-approvers)"
	rHours        = "forbid policies/hours.cedar:6 (prod-working-hours): production access outside working hours (Mon-Fri 08:00-20:00 UTC) needs break-glass"
)

func TestExampleDecisions(t *testing.T) {
	s := loadExample(t)
	tests := []struct {
		name      string
		q         bot.AuthzQuery
		allow     bool
		reasons   []string
		approvals int
	}{
		{
			name:  "sre requests prod-ssm on a prod box in working hours",
			q:     bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionRequest, Profile: "prod-ssm", Duration: 30 * time.Minute, Targets: []bot.Target{prodBox(i1)}, Now: tue10},
			allow: true, reasons: []string{rSRERequest}, approvals: 1,
		},
		{
			name:  "sre requests 4h exactly",
			q:     bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionRequest, Profile: "prod-readonly", Duration: 4 * time.Hour, Now: tue10},
			allow: true, reasons: []string{rSRERequest}, approvals: 1,
		},
		{
			name: "sre requests 4h01m: over the rule and over the profile",
			q:    bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionRequest, Profile: "prod-readonly", Duration: 4*time.Hour + time.Minute, Now: tue10},
			reasons: []string{
				`4h1m exceeds the maximum 4h of profile "prod-readonly"`,
				`no rule permits request on profile "prod-readonly" for U0SRE00001`,
			},
		},
		{
			name:    "sre requests prod at night",
			q:       bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionRequest, Profile: "prod-ssm", Duration: 30 * time.Minute, Now: tue22},
			reasons: []string{rHours},
		},
		{
			name:    "sre requests prod on Saturday",
			q:       bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionRequest, Profile: "prod-readonly", Duration: time.Hour, Now: sat10},
			reasons: []string{rHours},
		},
		{
			name:  "hours are UTC whatever the zone of Now",
			q:     bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionRequest, Profile: "prod-readonly", Duration: time.Hour, Now: jst18},
			allow: true, reasons: []string{rSRERequest}, approvals: 1,
		},
		{
			name:  "sre member by e-mail, any case",
			q:     bot.AuthzQuery{Principal: bot.Principal{ID: "U0ALICE", Email: "Alice@Example.COM"}, Action: bot.ActionRequest, Profile: "prod-readonly", Duration: time.Hour, Now: tue10},
			allow: true, reasons: []string{rSRERequest}, approvals: 1,
		},
		{
			name:  "sre member by Slack user group",
			q:     bot.AuthzQuery{Principal: bot.Principal{ID: "U0CAROL", SlackGroups: []string{"S0OTHER", "S0SREGRP01"}}, Action: bot.ActionRequest, Profile: "prod-readonly", Duration: time.Hour, Now: tue10},
			allow: true, reasons: []string{rSRERequest}, approvals: 1,
		},
		{
			name:    "a stranger",
			q:       bot.AuthzQuery{Principal: bot.Principal{ID: "U0NOBODY", Email: "eve@example.com", SlackGroups: []string{"S0OTHER"}}, Action: bot.ActionRequest, Profile: "prod-readonly", Duration: time.Hour, Now: tue10},
			reasons: []string{`no rule permits request on profile "prod-readonly" for U0NOBODY`},
		},
		{
			name:    "unknown profile",
			q:       bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionRequest, Profile: "prod-god", Duration: time.Hour, Now: tue10},
			reasons: []string{`unknown profile "prod-god" (known: prod-readonly, prod-ssm, staging-admin)`},
		},
		{
			name:    "ssm target outside the profile's selector",
			q:       bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionRequest, Profile: "prod-ssm", Duration: time.Hour, Targets: []bot.Target{prodBox(i1), devBox(i2)}, Now: tue10},
			reasons: []string{`instance i-0fedcba9876543210 is not in profile "prod-ssm" (needs tags Env=prod)`},
		},
		{
			name:    "targets on an sts profile",
			q:       bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionRequest, Profile: "prod-readonly", Duration: time.Hour, Targets: []bot.Target{prodBox(i1)}, Now: tue10},
			reasons: []string{`profile "prod-readonly" is sts and takes no instances (got i-0123456789abcdef0)`},
		},
		{
			name:  "dev takes staging-admin at night without approval",
			q:     bot.AuthzQuery{Principal: user("U0DEV00001"), Action: bot.ActionRequest, Profile: "staging-admin", Duration: 8 * time.Hour, Now: tue22},
			allow: true, reasons: []string{rDevStaging},
		},
		{
			name:    "dev asks for prod",
			q:       bot.AuthzQuery{Principal: bot.Principal{ID: "U0BOB", Email: "bob@example.com"}, Action: bot.ActionRequest, Profile: "prod-readonly", Duration: time.Hour, Now: tue10},
			reasons: []string{`no rule permits request on profile "prod-readonly" for U0BOB`},
		},
		{
			name:    "dev asks for 9h of staging",
			q:       bot.AuthzQuery{Principal: user("U0DEV00001"), Action: bot.ActionRequest, Profile: "staging-admin", Duration: 9 * time.Hour, Now: tue10},
			reasons: []string{`9h exceeds the maximum 8h of profile "staging-admin"`, `no rule permits request on profile "staging-admin" for U0DEV00001`},
		},
		{
			name:  "on-call files a break-glass request at night",
			q:     bot.AuthzQuery{Principal: bot.Principal{ID: "U0ONCALL", SlackGroups: []string{"S0ONCALL01"}}, Action: bot.ActionRequest, Profile: "prod-ssm", Duration: 30 * time.Minute, Targets: []bot.Target{prodBox(i1)}, Now: tue22, Context: map[string]string{CtxBreakGlass: "true"}},
			allow: true, reasons: []string{rOncallBG}, approvals: 1,
		},
		{
			name:  "on-call breaks glass at night",
			q:     bot.AuthzQuery{Principal: bot.Principal{ID: "U0ONCALL", SlackGroups: []string{"S0ONCALL01"}}, Action: bot.ActionBreakGlass, Profile: "prod-ssm", Duration: time.Hour, Targets: []bot.Target{prodBox(i1)}, Now: tue22},
			allow: true, reasons: []string{rOncallBG},
		},
		{
			name:    "on-call asks at night without break-glass",
			q:       bot.AuthzQuery{Principal: bot.Principal{ID: "U0ONCALL", SlackGroups: []string{"S0ONCALL01"}}, Action: bot.ActionRequest, Profile: "prod-ssm", Duration: 30 * time.Minute, Now: tue22},
			reasons: []string{rHours},
		},
		{
			name:    "on-call breaks glass for too long",
			q:       bot.AuthzQuery{Principal: bot.Principal{ID: "U0ONCALL", SlackGroups: []string{"S0ONCALL01"}}, Action: bot.ActionBreakGlass, Profile: "prod-ssm", Duration: 61 * time.Minute, Now: tue22},
			reasons: []string{`no rule permits break_glass on profile "prod-ssm" for U0ONCALL`},
		},
		{
			name:    "break-glass on a profile without it",
			q:       bot.AuthzQuery{Principal: bot.Principal{ID: "U0ONCALL", SlackGroups: []string{"S0ONCALL01"}}, Action: bot.ActionBreakGlass, Profile: "prod-readonly", Duration: time.Hour, Now: tue22},
			reasons: []string{`profile "prod-readonly" does not allow break-glass`, `no rule permits break_glass on profile "prod-readonly" for U0ONCALL`},
		},
		{
			name:    "sre may not break glass",
			q:       bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionBreakGlass, Profile: "prod-ssm", Duration: time.Hour, Now: tue22},
			reasons: []string{`no rule permits break_glass on profile "prod-ssm" for U0SRE00001`},
		},
		{
			name:  "sre approves someone's request",
			q:     bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionApprove, Profile: "prod-ssm", Duration: time.Hour, Now: tue22, Context: map[string]string{CtxRequester: "U0DEV00001"}},
			allow: true, reasons: []string{rSREApprove},
		},
		{
			name:    "dev may not approve",
			q:       bot.AuthzQuery{Principal: user("U0DEV00001"), Action: bot.ActionApprove, Profile: "staging-admin", Now: tue10, Context: map[string]string{CtxRequester: "U0SRE00001"}},
			reasons: []string{`no rule permits approve on profile "staging-admin" for U0DEV00001`},
		},
		{
			name:  "sre reviews a break-glass",
			q:     bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionReview, Profile: "prod-ssm", Now: tue10},
			allow: true, reasons: []string{rSREApprove},
		},
		{
			name:  "windows admin joins a dev box at once",
			q:     bot.AuthzQuery{Principal: user("U0WIN00001"), Action: bot.ActionDomainJoin, Targets: []bot.Target{devBox(i1)}, Now: tue22},
			allow: true, reasons: []string{rWinDomain},
		},
		{
			name:  "windows admin joins a prod box after one approval",
			q:     bot.AuthzQuery{Principal: user("U0WIN00001"), Action: bot.ActionDomainLeave, Targets: []bot.Target{prodBox(i1)}, Now: tue22},
			allow: true, reasons: []string{rWinDomainPrd}, approvals: 1,
		},
		{
			name:  "two instances, one prod: both rules, one approval",
			q:     bot.AuthzQuery{Principal: user("U0WIN00001"), Action: bot.ActionDomainJoin, Targets: []bot.Target{devBox(i1), prodBox(i2)}, Now: tue10},
			allow: true, reasons: []string{rWinDomain, rWinDomainPrd}, approvals: 1,
		},
		{
			name:    "sre may not join domains",
			q:       bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionDomainJoin, Targets: []bot.Target{devBox(i1), prodBox(i2)}, Now: tue10},
			reasons: []string{"no rule permits domain_join on instance i-0123456789abcdef0 for U0SRE00001", "no rule permits domain_join on instance i-0fedcba9876543210 for U0SRE00001"},
		},
		{
			name:  "sre approves a domain operation",
			q:     bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionApprove, Targets: []bot.Target{prodBox(i1)}, Now: tue10, Context: map[string]string{CtxRequester: "U0WIN00001"}},
			allow: true, reasons: []string{rDomainApprov},
		},
		{
			name:  "on-call acts on an alert",
			q:     bot.AuthzQuery{Principal: bot.Principal{ID: "U0ONCALL", SlackGroups: []string{"S0ONCALL01"}}, Action: bot.ActionAlertAct, Now: tue22, Context: map[string]string{CtxAlert: "2bj1xyz", CtxService: "web", CtxEnv: "prod"}},
			allow: true, reasons: []string{rAlerts},
		},
		{
			name:    "dev may not act on alerts",
			q:       bot.AuthzQuery{Principal: user("U0DEV00001"), Action: bot.ActionAlertAct, Now: tue22, Context: map[string]string{CtxAlert: "2bj1xyz"}},
			reasons: []string{"no rule permits alert_act on alert 2bj1xyz for U0DEV00001"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := s.Authorize(context.Background(), tt.q)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if o.Allow != tt.allow || !slices.Equal(o.Reasons, tt.reasons) || o.Approvals != tt.approvals {
				t.Errorf("got allow=%v approvals=%d reasons:\n  %s\nwant allow=%v approvals=%d reasons:\n  %s",
					o.Allow, o.Approvals, strings.Join(o.Reasons, "\n  "), tt.allow, tt.approvals, strings.Join(tt.reasons, "\n  "))
			}
		})
	}
}

func TestAuthorizeErrors(t *testing.T) {
	s := loadExample(t)
	sre := user("U0SRE00001")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		q    bot.AuthzQuery
		want string
	}{
		{"no principal", nil, bot.AuthzQuery{Action: bot.ActionRequest, Profile: "prod-ssm"}, "authorize request: no principal"},
		{"unknown action", nil, bot.AuthzQuery{Principal: sre, Action: "sudo"}, `authorize: unknown action "sudo"`},
		{"unknown context key", nil, bot.AuthzQuery{Principal: sre, Action: bot.ActionRequest, Profile: "prod-ssm", Context: map[string]string{"Env": "prod"}},
			`authorize request: unknown context key "Env" (known: account, alert, break_glass, ecs_service, env, host, monitor, pipeline, requester, role, service, stage)`},
		{"bad break_glass", nil, bot.AuthzQuery{Principal: sre, Action: bot.ActionRequest, Profile: "prod-ssm", Context: map[string]string{CtxBreakGlass: "yes"}},
			`authorize request: context break_glass "yes" is not true or false`},
		{"request without profile", nil, bot.AuthzQuery{Principal: sre, Action: bot.ActionRequest}, "authorize request: no profile"},
		{"approve without anything", nil, bot.AuthzQuery{Principal: sre, Action: bot.ActionApprove}, "authorize approve: no profile and no target"},
		{"domain without target", nil, bot.AuthzQuery{Principal: sre, Action: bot.ActionDomainJoin}, "authorize domain_join: no target instance"},
		{"alert without id", nil, bot.AuthzQuery{Principal: sre, Action: bot.ActionAlertAct}, `authorize alert_act: no "alert" in context`},
		{"negative duration", nil, bot.AuthzQuery{Principal: sre, Action: bot.ActionRequest, Profile: "prod-ssm", Duration: -time.Minute}, "authorize request: negative duration -1m0s"},
		{"canceled", canceled, bot.AuthzQuery{Principal: sre, Action: bot.ActionRequest, Profile: "prod-ssm"}, "authorize request: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			d, err := s.Authorize(ctx, tt.q)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Authorize = %+v, %v; want error %q", d, err, tt.want)
			}
			if d.Allow {
				t.Error("allowed on error")
			}
		})
	}
}

// TestEngine covers behaviour the example set does not exercise.
func TestEngine(t *testing.T) {
	s, probs := loadFS(fixture(map[string]string{"rules.cedar": `@id("ops")
permit (principal in Tokken::Group::"ops", action == Tokken::Action::"approve", resource);

@reason("overflowing")
forbid (principal, action == Tokken::Action::"approve", resource)
when { context.duration_minutes * 100000000000 > 100000000000 };

permit (principal, action == Tokken::Action::"revoke", resource)
when { context has requester && context.requester == principal };

permit (principal, action == Tokken::Action::"review", resource)
when { context.env == "prod" };
`}), "policies")
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	tests := []struct {
		name    string
		q       bot.AuthzQuery
		allow   bool
		reasons []string
	}{
		{
			name:  "included group",
			q:     bot.AuthzQuery{Principal: user("U0SRE"), Action: bot.ActionApprove, Profile: "staging", Duration: time.Minute},
			allow: true, reasons: []string{"permit policies/rules.cedar:1 (ops)"},
		},
		{
			name:    "forbid matches",
			q:       bot.AuthzQuery{Principal: user("U0SRE"), Action: bot.ActionApprove, Profile: "staging", Duration: time.Hour},
			reasons: []string{"forbid policies/rules.cedar:4: overflowing"},
		},
		{
			name:    "a forbid that fails to evaluate denies",
			q:       bot.AuthzQuery{Principal: user("U0SRE"), Action: bot.ActionApprove, Profile: "staging", Duration: 2_000_000 * time.Hour},
			reasons: []string{"forbid policies/rules.cedar:4 could not be evaluated; denied to be safe"},
		},
		{
			name:  "requester entity in context",
			q:     bot.AuthzQuery{Principal: user("U0SRE"), Action: bot.ActionRevoke, Profile: "staging", Context: map[string]string{CtxRequester: "U0SRE"}},
			allow: true, reasons: []string{"permit policies/rules.cedar:8"},
		},
		{
			name:    "someone else's request",
			q:       bot.AuthzQuery{Principal: user("U0SRE"), Action: bot.ActionRevoke, Profile: "staging", Context: map[string]string{CtxRequester: "U0OTHER"}},
			reasons: []string{`no rule permits revoke on profile "staging" for U0SRE`},
		},
		{
			name:  "env from the targets' common Env tag",
			q:     bot.AuthzQuery{Principal: user("U0X"), Action: bot.ActionReview, Targets: []bot.Target{prodBox(i1), prodBox(i2)}},
			allow: true, reasons: []string{"permit policies/rules.cedar:11"},
		},
		{
			name:    "targets disagree: no env",
			q:       bot.AuthzQuery{Principal: user("U0X"), Action: bot.ActionReview, Profile: "prod-ssm", Targets: []bot.Target{prodBox(i1), devBox(i2)}},
			reasons: []string{`no rule permits review on profile "prod-ssm" for U0X`},
		},
		{
			name:  "env from the caller wins",
			q:     bot.AuthzQuery{Principal: user("U0X"), Action: bot.ActionReview, Profile: "staging", Targets: []bot.Target{devBox(i1)}, Context: map[string]string{CtxEnv: "prod"}},
			allow: true, reasons: []string{"permit policies/rules.cedar:11"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := s.Authorize(context.Background(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow || !slices.Equal(d.Reasons, tt.reasons) {
				t.Errorf("got %v %q, want %v %q", d.Allow, d.Reasons, tt.allow, tt.reasons)
			}
		})
	}
}

// TestConcurrentAuthorize runs under -race: a Set serves goroutines at once.
func TestConcurrentAuthorize(t *testing.T) {
	s := loadExample(t)
	q := bot.AuthzQuery{Principal: user("U0SRE00001"), Action: bot.ActionRequest, Profile: "prod-ssm", Duration: time.Hour, Targets: []bot.Target{prodBox(i1)}, Now: tue10}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				d, err := s.Authorize(context.Background(), q)
				if err != nil || !d.Allow {
					errs <- fmt.Sprint(d, err)
					return
				}
				s.Profiles()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func BenchmarkAuthorize(b *testing.B) {
	s := loadExample(b)
	ctx := context.Background()
	q := bot.AuthzQuery{
		Principal: bot.Principal{ID: "U0CAROL", Email: "carol@example.com", SlackGroups: []string{"S0SREGRP01", "S0OTHER"}},
		Action:    bot.ActionRequest, Profile: "prod-ssm", Duration: 30 * time.Minute,
		Targets: []bot.Target{prodBox(i1)}, Now: tue10,
	}
	b.ReportAllocs()
	for b.Loop() {
		d, err := s.Authorize(ctx, q)
		if err != nil || !d.Allow {
			b.Fatal(d, err)
		}
	}
}

func TestSlackUserGroups(t *testing.T) {
	got := loadExample(t).SlackUserGroups()
	if !slices.Equal(got, []string{"S0ONCALL01", "S0SREGRP01"}) {
		t.Fatalf("SlackUserGroups() = %v", got)
	}
}
