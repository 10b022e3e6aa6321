package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tokken/tokken/bot/alert"
)

// RoutesFile is the alert routing file in a policy directory.
const RoutesFile = "routes.yaml"

var (
	routesTopKeys    = []string{"default", "routes", "environments", "environment_channels", "quiet", "tag_keys"}
	routeKeys        = []string{"name", "match", "channel", "mention", "drop"}
	matchKeys        = []string{"source", "org", "service", "role", "host", "monitor", "environment", "status"}
	envRuleKeys      = []string{"name", "org", "service", "role", "host", "account", "tag"}
	routeDefaultKeys = []string{"channel", "mention"}
)

// LoadRoutes reads dir/routes.yaml into alert routes. It reports every
// problem at once, each located to its line
// ("policies/routes.yaml:7: unknown status "crit" (allowed: ok, warning,
// critical, unknown)"), as Problems. It is independent of Load: routes
// change more often than access rules and are checked on their own.
func LoadRoutes(dir string) (*alert.Routes, error) {
	file := filepath.Join(dir, RoutesFile)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load alert routes: %w", err)
	}
	return ParseRoutes(file, data)
}

// ParseRoutes parses the contents of a routes file; file names it in
// problems and in each decision's Rule ("policies/routes.yaml:12").
func ParseRoutes(file string, data []byte) (*alert.Routes, error) {
	var probs Problems
	r := report{file: file, probs: &probs}
	routes := parseRoutes(r, data)
	if len(probs) > 0 {
		return nil, probs
	}
	routes.File = file
	return routes, nil
}

func parseRoutes(r report, data []byte) *alert.Routes {
	out := &alert.Routes{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := yamlLineRE().FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimPrefix(msg, m[0]+": ")
		}
		r.at(syntaxErrorLine(data, line), "invalid YAML: %s", msg)
		return out
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		r.at(0, "empty file: a default channel is required")
		return out
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		r.at(root.Line, "expected a mapping with keys %s", strings.Join(routesTopKeys, ", "))
		return out
	}
	top := fields(r, RoutesFile, root, routesTopKeys)
	if n, ok := top["default"]; ok {
		f := fields(r, "default", n, routeDefaultKeys)
		out.Default = alert.Rule{Name: "default", Line: n.Line}
		parseRouteTarget(r, f, &out.Default)
		if out.Default.Channel == "" && f["channel"] == nil {
			r.at(n.Line, "default needs a channel")
		}
	} else {
		r.at(root.Line, "default is required: the channel for alerts no route matches")
	}
	if n, ok := top["routes"]; ok {
		for _, item := range routeSeq(r, "routes", n) {
			if rule, ok := parseRoute(r, item); ok {
				out.Rules = append(out.Rules, rule)
			}
		}
	}
	if n, ok := top["environments"]; ok {
		for _, item := range routeSeq(r, "environments", n) {
			if e, ok := parseEnvRule(r, item); ok {
				out.Environments = append(out.Environments, e)
			}
		}
	}
	if n, ok := top["environment_channels"]; ok {
		out.EnvChannels = map[string]string{}
		if n.Kind != yaml.MappingNode {
			r.at(n.Line, "environment_channels must map environment names to channel ids")
		} else {
			eachKey(r, n, func(k, v *yaml.Node) {
				if ch, ok := routeChannel(r, "environment_channels."+k.Value, v); ok {
					out.EnvChannels[alert.NormalizeEnv(k.Value)] = ch
				}
			})
		}
	}
	if n, ok := top["quiet"]; ok {
		out.Quiet = []string{} // present but empty disables the guard
		for _, v := range list(r, "quiet", n) {
			out.Quiet = append(out.Quiet, alert.NormalizeEnv(v.Value))
		}
	}
	if n, ok := top["tag_keys"]; ok {
		out.TagKeys = []string{}
		for _, v := range list(r, "tag_keys", n) {
			out.TagKeys = append(out.TagKeys, v.Value)
		}
	}
	return out
}

// routeSeq returns a sequence's items, reporting anything else.
func routeSeq(r report, key string, n *yaml.Node) []*yaml.Node {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		r.at(n.Line, "%s must be a list", key)
		return nil
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, it := range n.Content {
		out = append(out, deref(it))
	}
	return out
}

func parseRoute(r report, n *yaml.Node) (alert.Rule, bool) {
	before := len(*r.probs)
	f := fields(r, "route", n, routeKeys)
	rule := alert.Rule{Line: n.Line}
	if v, ok := f["name"]; ok {
		rule.Name, _ = str(r, "name", v)
	}
	if v, ok := f["match"]; ok {
		rule.Match = parseMatch(r, v)
	}
	if v, ok := f["drop"]; ok {
		switch {
		case v.Kind != yaml.ScalarNode || v.Tag != "!!bool":
			r.at(v.Line, "drop must be true or false")
		default:
			rule.Drop = v.Value == "true" || v.Value == "True" || v.Value == "TRUE"
		}
	}
	parseRouteTarget(r, f, &rule)
	switch {
	case rule.Drop && (f["channel"] != nil || f["mention"] != nil):
		r.at(n.Line, "a route either drops (drop: true) or names a channel, not both")
	case !rule.Drop && f["channel"] == nil:
		r.at(n.Line, "route needs a channel (or drop: true)")
	}
	return rule, len(*r.probs) == before
}

// parseRouteTarget reads channel and mention into rule.
func parseRouteTarget(r report, f map[string]*yaml.Node, rule *alert.Rule) {
	if v, ok := f["channel"]; ok {
		rule.Channel, _ = routeChannel(r, "channel", v)
	}
	if v, ok := f["mention"]; ok {
		if s, ok := str(r, "mention", v); ok {
			if s == "here" || s == "channel" || slackGroupRE().MatchString(s) || slackUserRE().MatchString(s) {
				rule.Mention = s
			} else {
				r.at(v.Line, "mention %q must be a Slack user group id (S…), a user id (U…), here or channel", s)
			}
		}
	}
}

// routeChannel reads a Slack channel id.
func routeChannel(r report, key string, n *yaml.Node) (string, bool) {
	s, ok := str(r, key, n)
	if !ok {
		return "", false
	}
	if !channelRE().MatchString(s) {
		r.at(n.Line, "%s %q must be a Slack channel id (C… or G…), not a name", key, s)
		return "", false
	}
	return s, true
}

func parseMatch(r report, n *yaml.Node) alert.Match {
	var m alert.Match
	f := fields(r, "match", n, matchKeys)
	pats := func(key string) []string {
		v, ok := f[key]
		if !ok {
			return nil
		}
		var out []string
		for _, it := range list(r, key, v) {
			if strings.TrimSpace(it.Value) == "" {
				r.at(it.Line, "empty %s pattern", key)
				continue
			}
			out = append(out, it.Value)
		}
		return out
	}
	if v, ok := f["source"]; ok {
		for _, it := range list(r, "source", v) {
			s := alert.Source(strings.ToLower(it.Value))
			if !slices.Contains(alert.Sources(), s) {
				r.at(it.Line, "unknown source %q (allowed: %s)", it.Value, joinAny(alert.Sources()))
				continue
			}
			m.Sources = append(m.Sources, s)
		}
	}
	if v, ok := f["status"]; ok {
		for _, it := range list(r, "status", v) {
			st, ok := alert.ParseStatus(it.Value)
			if !ok {
				r.at(it.Line, "unknown status %q (allowed: %s)", it.Value, joinAny(alert.Statuses()))
				continue
			}
			m.Statuses = append(m.Statuses, st)
		}
	}
	m.Orgs = pats("org")
	m.Services = pats("service")
	m.Roles = pats("role")
	m.Hosts = pats("host")
	m.Monitors = pats("monitor")
	m.Environments = pats("environment")
	return m
}

func parseEnvRule(r report, n *yaml.Node) (alert.EnvRule, bool) {
	before := len(*r.probs)
	f := fields(r, "environment", n, envRuleKeys)
	e := alert.EnvRule{Line: n.Line}
	if v, ok := f["name"]; ok {
		if s, ok := str(r, "name", v); ok {
			e.Name = alert.NormalizeEnv(s)
		}
	} else {
		r.at(n.Line, "environment needs a name")
	}
	strs := func(key string) []string {
		var out []string
		if v, ok := f[key]; ok {
			for _, it := range list(r, key, v) {
				out = append(out, it.Value)
			}
		}
		return out
	}
	e.Orgs, e.Services, e.Roles, e.Hosts, e.Accounts = strs("org"), strs("service"), strs("role"), strs("host"), strs("account")
	if v, ok := f["tag"]; ok {
		if v.Kind != yaml.MappingNode {
			r.at(v.Line, "tag must map tag keys to value patterns")
		} else {
			e.Tags = map[string]string{}
			eachKey(r, v, func(k, val *yaml.Node) {
				if s, ok := str(r, "tag "+k.Value, val); ok {
					e.Tags[k.Value] = s
				}
			})
		}
	}
	if len(e.Orgs)+len(e.Services)+len(e.Roles)+len(e.Hosts)+len(e.Accounts)+len(e.Tags) == 0 && len(*r.probs) == before {
		r.at(n.Line, "environment %q has no condition (org, service, role, host, account or tag)", e.Name)
	}
	return e, len(*r.probs) == before
}

func joinAny[T ~string](vals []T) string {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
