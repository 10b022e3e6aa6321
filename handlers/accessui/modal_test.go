package accessui

import (
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/access"
)

var choices = []Choice{
	{Profile: access.Profile{Name: "prod-ssm", Kind: access.KindSSM, MaxDuration: 4 * time.Hour, BreakGlass: true,
		Presets: []time.Duration{15 * time.Minute, time.Hour}, DefaultDuration: 30 * time.Minute}, BreakGlassOnly: true},
	{Profile: access.Profile{Name: "prod-readonly", Kind: access.KindSTS, MaxDuration: time.Hour,
		Presets: []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour}, DefaultDuration: time.Hour}},
}

func form(values map[string]slack.BlockAction) *slack.ViewState {
	st := &slack.ViewState{Values: map[string]map[string]slack.BlockAction{}}
	for b, v := range values {
		st.Values[b] = map[string]slack.BlockAction{actionID(b): v}
	}
	return st
}

func sel(v string) slack.BlockAction {
	return slack.BlockAction{SelectedOption: slack.OptionBlockObject{Value: v}}
}

func multi(vs ...string) slack.BlockAction {
	var a slack.BlockAction
	for _, v := range vs {
		a.SelectedOptions = append(a.SelectedOptions, slack.OptionBlockObject{Value: v})
	}
	return a
}

func TestRequestForm(t *testing.T) {
	valid := func() map[string]slack.BlockAction {
		return map[string]slack.BlockAction{
			blockProfile: sel("prod-ssm"), blockTargets: multi("i-0abc123def4567890"), blockDuration: sel("1h"),
			blockReason: {Value: " sev1 "}, blockBreakGlass: multi("yes"),
		}
	}
	tests := []struct {
		name   string
		change func(map[string]slack.BlockAction)
		errs   map[string]string // block -> substring of its error
	}{
		{"valid break-glass", func(map[string]slack.BlockAction) {}, nil},
		{"valid sts", func(v map[string]slack.BlockAction) {
			v[blockProfile], v[blockTargets], v[blockBreakGlass] = sel("prod-readonly"), multi(), multi()
		}, nil},
		{"nothing", func(v map[string]slack.BlockAction) { clear(v) }, map[string]string{
			blockProfile: "Choose a profile", blockDuration: "Choose how long", blockReason: "Say what you will do"}},
		{"break-glass only without break-glass", func(v map[string]slack.BlockAction) { v[blockBreakGlass] = multi() },
			map[string]string{blockProfile: "only request prod-ssm as break-glass"}},
		{"break-glass where not allowed", func(v map[string]slack.BlockAction) {
			v[blockProfile], v[blockTargets] = sel("prod-readonly"), multi()
		}, map[string]string{blockBreakGlass: "does not allow break-glass"}},
		{"too long", func(v map[string]slack.BlockAction) {
			v[blockProfile], v[blockTargets], v[blockBreakGlass], v[blockDuration] = sel("prod-readonly"), multi(), multi(), sel("2h")
		}, map[string]string{blockDuration: "at most 1h"}},
		{"ssm without instances", func(v map[string]slack.BlockAction) { v[blockTargets] = multi() },
			map[string]string{blockTargets: "Pick the instances"}},
		{"sts with instances", func(v map[string]slack.BlockAction) {
			v[blockProfile], v[blockBreakGlass] = sel("prod-readonly"), multi()
		}, map[string]string{blockTargets: "grants a role, not instances"}},
		{"forged instance", func(v map[string]slack.BlockAction) { v[blockTargets] = multi("i-0abc123def4567890", "<!channel>") },
			map[string]string{blockTargets: "not an instance id"}},
		{"profile no longer requestable", func(v map[string]slack.BlockAction) { v[blockProfile] = sel("staging-admin") },
			map[string]string{blockProfile: "may not request this profile"}},
		{"bad duration", func(v map[string]slack.BlockAction) { v[blockDuration] = sel("forever") },
			map[string]string{blockDuration: "not a duration"}},
		{"long reason and ticket", func(v map[string]slack.BlockAction) {
			v[blockReason] = slack.BlockAction{Value: strings.Repeat("x", access.MaxReasonChars+1)}
			v[blockTicket] = slack.BlockAction{Value: strings.Repeat("t", MaxTicketChars+1)}
		}, map[string]string{blockReason: "501 characters; it may have at most 500", blockTicket: "301 characters; it may have at most 300"}},
		{"long Japanese reason and ticket", func(v map[string]slack.BlockAction) {
			v[blockReason] = slack.BlockAction{Value: strings.Repeat("理", access.MaxReasonChars+1)}
			v[blockTicket] = slack.BlockAction{Value: strings.Repeat("票", MaxTicketChars+1)}
		}, map[string]string{blockReason: "501 characters; it may have at most 500", blockTicket: "301 characters; it may have at most 300"}},
		// 500 kana are 1500 bytes but 500 characters: within the limits.
		{"Japanese reason and ticket at the limits", func(v map[string]slack.BlockAction) {
			v[blockReason] = slack.BlockAction{Value: strings.Repeat("理", access.MaxReasonChars)}
			v[blockTicket] = slack.BlockAction{Value: strings.Repeat("票", MaxTicketChars)}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := valid()
			tt.change(v)
			f, errs := parseRequestForm(form(v))
			checkForm(f, choices, errs)
			if len(errs) != len(tt.errs) {
				t.Fatalf("errors %v, want %v", errs, tt.errs)
			}
			for b, want := range tt.errs {
				if !strings.Contains(errs[b], want) {
					t.Errorf("%s: %q, want %q", b, errs[b], want)
				}
			}
			if len(tt.errs) == 0 && (f.Reason == "" || f.Duration == 0) {
				t.Errorf("form %+v", f)
			}
		})
	}
	if _, errs := parseRequestForm(nil); len(errs) == 0 {
		t.Error("a submission without state raised no error")
	}
}

func TestRequestModal(t *testing.T) {
	m := RequestModal(choices)
	if m.CallbackID != CallbackRequest || len(m.Blocks.BlockSet) != 6 {
		t.Fatalf("modal %s with %d blocks", m.CallbackID, len(m.Blocks.BlockSet))
	}
	dur := m.Blocks.BlockSet[2].(*slack.InputBlock).Element.(*slack.SelectBlockElement)
	var got []string
	for _, o := range dur.Options {
		got = append(got, o.Value)
	}
	// Presets and defaults of both profiles, each within its profile's max.
	if strings.Join(got, ",") != "15m,30m,1h" {
		t.Errorf("durations %v", got)
	}
	targets := m.Blocks.BlockSet[1].(*slack.InputBlock).Element.(*slack.MultiSelectBlockElement)
	if targets.Type != slack.MultiOptTypeExternal || targets.ActionID != "access:targets" {
		t.Errorf("targets select %+v", targets)
	}
	if len(RequestModal(choices[1:]).Blocks.BlockSet) != 5 {
		t.Error("break-glass offered without a profile that allows it")
	}
}

func TestRequestFormECS(t *testing.T) {
	const task = "0123456789abcdef0123456789abcdef"
	ecsChoices := append([]Choice{{Profile: access.Profile{Name: "staging-exec", Kind: access.KindECSExec, MaxDuration: time.Hour,
		Presets: []time.Duration{30 * time.Minute}, ECS: access.ECSSelector{Cluster: "staging"}}}}, choices[1])
	base := func() map[string]slack.BlockAction {
		return map[string]slack.BlockAction{blockProfile: sel("staging-exec"), blockDuration: sel("30m"), blockReason: {Value: "502s"}}
	}
	tests := []struct {
		name       string
		change     func(map[string]slack.BlockAction)
		errs       map[string]string
		wantTarget string
	}{
		{"service", func(v map[string]slack.BlockAction) { v[blockECSService] = sel("web") }, nil, "web"},
		{"task alone", func(v map[string]slack.BlockAction) { v[blockECSTask] = sel(task) }, nil, task},
		{"service and its task: the task", func(v map[string]slack.BlockAction) {
			v[blockECSService], v[blockECSTask] = sel("web"), sel(task)
		}, nil, task},
		{"neither", func(map[string]slack.BlockAction) {}, map[string]string{blockECSService: "Pick the service"}, ""},
		{"forged service", func(v map[string]slack.BlockAction) { v[blockECSService] = sel("<!here>") },
			map[string]string{blockECSService: "not a service name"}, ""},
		{"forged task", func(v map[string]slack.BlockAction) { v[blockECSTask] = sel("web") },
			map[string]string{blockECSTask: "not a task id"}, ""},
		{"sts with a service", func(v map[string]slack.BlockAction) {
			v[blockProfile], v[blockDuration], v[blockECSService] = sel("prod-readonly"), sel("30m"), sel("web")
		}, map[string]string{blockECSService: "not an ecs-exec profile"}, ""},
		{"sts with a task", func(v map[string]slack.BlockAction) {
			v[blockProfile], v[blockDuration], v[blockECSTask] = sel("prod-readonly"), sel("30m"), sel(task)
		}, map[string]string{blockECSTask: "not an ecs-exec profile"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := base()
			tt.change(v)
			f, errs := parseRequestForm(form(v))
			checkForm(f, ecsChoices, errs)
			if len(errs) != len(tt.errs) {
				t.Fatalf("errors %v, want %v", errs, tt.errs)
			}
			for b, want := range tt.errs {
				if !strings.Contains(errs[b], want) {
					t.Errorf("%s: %q, want %q", b, errs[b], want)
				}
			}
			if tt.errs == nil && f.ECSTarget != tt.wantTarget {
				t.Errorf("target %q, want %q", f.ECSTarget, tt.wantTarget)
			}
		})
	}

	// The modal shows the cluster as context, then a service and a task
	// select, each answered from the index.
	m := RequestModal(ecsChoices)
	var ids []string
	for _, b := range m.Blocks.BlockSet {
		ids = append(ids, b.ID())
	}
	if got := strings.Join(ids, ","); got != "profile,targets,ecs_clusters,ecs_service,ecs_task,duration,reason,ticket" {
		t.Errorf("blocks %s", got)
	}
	ctxText := m.Blocks.BlockSet[2].(*slack.ContextBlock).ContextElements.Elements[0].(*slack.TextBlockObject).Text
	if !strings.Contains(ctxText, "*staging-exec* → cluster `staging`") {
		t.Errorf("cluster context %q", ctxText)
	}
	for i, id := range []string{"access:ecs_service", "access:ecs_task"} {
		s := m.Blocks.BlockSet[3+i].(*slack.InputBlock).Element.(*slack.SelectBlockElement)
		if s.Type != slack.OptTypeExternal || s.ActionID != id {
			t.Errorf("select %d: %+v", i, s)
		}
	}
}
