package policies

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tokken/tokken/bot"
)

// FuzzLoad feeds arbitrary profiles.yaml, groups.yaml and Cedar text to the
// loader: it must never panic, every problem must point into a real file
// line, and whatever loads must answer queries without panicking.
//
//	go test -run '^$' -fuzz FuzzLoad -fuzztime 30s ./policies/
func FuzzLoad(f *testing.F) {
	read := func(name string) string {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		return string(data)
	}
	f.Add(read(ProfilesFile), read(GroupsFile), read("access.cedar")+read("hours.cedar"))
	f.Add(read(ProfilesFile), read(GroupsFile), read("domain.cedar")+read("alerts.cedar"))
	f.Add(baseProfiles, baseGroups, baseRules)
	f.Add("profiles:\n  p: &a\n    kind: sts\n  q: *a\n", "groups:\n  a: {include: [b]}\n  b: {include: [a]}\n", `permit (principal, action, resource) when { context.duration_minutes * 100000000000 > 1 };`)
	f.Add("profiles: [", "groups:\n\t- x", "forbid (principal, action == Tokken::Action::\"request\", resource) when { resource.hasTag(\"x\") };")
	f.Fuzz(func(t *testing.T, profiles, groups, rules string) {
		files := map[string]string{ProfilesFile: profiles, GroupsFile: groups, "rules.cedar": rules}
		fsys := fstest.MapFS{}
		for k, v := range files {
			fsys[k] = &fstest.MapFile{Data: []byte(v)}
		}
		s, probs := loadFS(fsys, "policies")
		for _, p := range probs {
			name := strings.TrimPrefix(p.File, "policies/")
			text, ok := files[name]
			switch {
			case p.File == "policies":
			case !ok:
				t.Fatalf("problem in unknown file: %v", p)
			case p.Line < 0 || p.Line > lineCount(text):
				t.Fatalf("problem line out of the file (%d lines): %v", lineCount(text), p)
			}
		}
		if (s == nil) == (len(probs) == 0) {
			t.Fatalf("set %v with %d problems", s != nil, len(probs))
		}
		if s == nil {
			return
		}
		now := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
		for _, a := range actions {
			q := bot.AuthzQuery{
				Principal: bot.Principal{ID: "U0SRE", Email: "sre@example.com", SlackGroups: []string{"S0ONCALL"}},
				Action:    a, Duration: time.Hour, Now: now,
				Targets: []bot.Target{{ID: "i-0123456789abcdef0", Tags: map[string]string{"Env": "prod"}}},
				Context: map[string]string{CtxAlert: "a1", CtxRequester: "U0DEV"},
			}
			for _, p := range s.Profiles() {
				q.Profile = p.Name
				if _, err := s.Authorize(context.Background(), q); err != nil {
					t.Fatalf("Authorize(%s %s): %v", a, p.Name, err)
				}
			}
		}
	})
}

// lineCount counts lines the way YAML does: \r\n, \r, \n and the Unicode
// line breaks each end one.
func lineCount(text string) int {
	r := strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n")
	return strings.Count(r.Replace(text), "\n") + 1
}
