package policies

import (
	"regexp"
	"strconv"
	"sync"

	cedar "github.com/cedar-policy/cedar-go"
	"gopkg.in/yaml.v3"

	"github.com/tokken/tokken/bot/access"
)

var ecsClusterARNRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/([A-Za-z0-9][A-Za-z0-9_-]*)$`)
})

// checkECS parses the ecs block of an ecs-exec profile (what the profile
// may target) and rejects it on other kinds.
func checkECS(r report, what string, k, v *yaml.Node, f map[string]*yaml.Node, p *profile) {
	n := f["ecs"]
	switch {
	case p.Kind == access.KindECSExec && n == nil:
		r.at(k.Line, "%s: ecs-exec profiles need ecs (a cluster, and optionally services, families, tags, containers)", what)
		return
	case p.Kind != access.KindECSExec && n != nil:
		if p.Kind != "" {
			r.at(n.Line, "ecs only applies to ecs-exec profiles; %s is %s", what, p.Kind)
		}
		return
	case n == nil:
		return
	}
	p.ECS = parseECS(r, keyLine(v, "ecs"), n)
}

// parseECS reads an ecs selector: cluster (name or ARN, required),
// services, families, containers (lists of names) and tags (a mapping).
func parseECS(r report, line int, n *yaml.Node) access.ECSSelector {
	var sel access.ECSSelector
	f := fields(r, "ecs", n, []string{"cluster", "services", "families", "tags", "containers"})
	if c := f["cluster"]; c == nil {
		r.at(line, "ecs needs a cluster (its name or ARN)")
	} else if s, ok := str(r, "cluster", c); ok {
		if access.ValidECSName(s) || ecsClusterARNRE().MatchString(s) {
			sel.Cluster = s
		} else {
			r.at(c.Line, "cluster %q is neither an ECS cluster name nor a cluster ARN (arn:aws:ecs:region:123456789012:cluster/name)", s)
		}
	}
	names := func(key string) []string {
		var out []string
		if l := f[key]; l != nil {
			for _, it := range list(r, key, l) {
				if !access.ValidECSName(it.Value) {
					r.at(it.Line, "%s: %q is not an ECS name (letters, digits, - and _)", key, it.Value)
					continue
				}
				out = append(out, it.Value)
			}
		}
		return out
	}
	sel.Services = names("services")
	sel.Families = names("families")
	sel.Containers = names("containers")
	if tags := f["tags"]; tags != nil {
		if tags.Kind != yaml.MappingNode {
			r.at(tags.Line, "tags must be a mapping of tag keys to values")
		} else {
			sel.Tags = map[string]string{}
			eachKey(r, tags, func(k, v *yaml.Node) {
				if s, ok := str(r, "tag "+strconv.Quote(k.Value), v); ok {
					sel.Tags[k.Value] = s
				}
			})
		}
	}
	return sel
}

// ecsProfileEntity is profile p as the resource of one ecs-exec request:
// its attributes, with service set to the ECS service asked for, so rules
// can say which services need approval.
func ecsProfileEntity(p profile, service string) cedar.Entity {
	uid := cedar.NewEntityUID(typeProfile, cedar.String(p.Name))
	attrs := profileAttrs(p).Map()
	attrs["service"] = cedar.String(service)
	return cedar.Entity{UID: uid, Attributes: cedar.NewRecord(attrs)}
}
