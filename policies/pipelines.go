package policies

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	"gopkg.in/yaml.v3"

	"github.com/tokken/tokken/bot/release"
)

// PipelinesFile maps CodePipeline pipelines to their approvers (release
// approvals, bot/release). It is optional: without it, no pipeline's
// approvals are taken.
const PipelinesFile = "pipelines.yaml"

// typePipeline is the resource of approve_release.
const typePipeline = cedar.EntityType("Tokken::Pipeline")

var pipelineKeys = []string{"match", "approver_channel", "approvals", "env"}

// pipeline makes the Pipeline resource of an approve_release query: the
// pipeline named in the context, with its stage and env.
func (ev *evaluation) pipeline() (cedar.EntityUID, error) {
	name := ev.q.Context[CtxPipeline]
	if name == "" {
		return cedar.EntityUID{}, fmt.Errorf("authorize %s: no %q in context", ev.q.Action, CtxPipeline)
	}
	uid := cedar.NewEntityUID(typePipeline, cedar.String(name))
	ev.ents.extra = append(ev.ents.extra, cedar.Entity{UID: uid, Attributes: cedar.NewRecord(cedar.RecordMap{
		"stage": cedar.String(ev.q.Context[CtxStage]),
		"env":   cedar.String(ev.q.Context[CtxEnv]),
	})})
	return uid, nil
}

// LoadPipelines reads dir/pipelines.yaml. A directory without one yields
// an empty list (no pipeline is approved from Slack) and no error.
func LoadPipelines(dir string) (*release.Pipelines, error) {
	file := filepath.Join(dir, PipelinesFile)
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return &release.Pipelines{File: file}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load pipelines: %w", err)
	}
	return ParsePipelines(file, data)
}

// pipelineChannels lists the approver channels of dir/pipelines.yaml (none
// when it does not load: Check reports why).
func pipelineChannels(dir string) []ChannelUse {
	pipes, err := LoadPipelines(dir)
	if err != nil {
		return nil
	}
	var out []ChannelUse
	for _, p := range pipes.Entries {
		out = append(out, ChannelUse{p.Channel, fmt.Sprintf("approver channel of pipelines %q (%s:%d)", p.Match, PipelinesFile, p.Line)})
	}
	return out
}

// PipelineReminder says, for `tokken policy check`, what the pipelines
// dir/pipelines.yaml takes need outside the policy directory: their
// approval actions must notify a topic the worker is subscribed to, and
// the worker may decide only pipelines the stack lists. Empty when the
// file names none (or does not load: Check reports why).
func PipelineReminder(dir string) string {
	pipes, err := LoadPipelines(dir)
	if err != nil || len(pipes.Entries) == 0 {
		return ""
	}
	matches := make([]string, 0, len(pipes.Entries))
	for _, p := range pipes.Entries {
		matches = append(matches, fmt.Sprintf("%q (%s:%d)", p.Match, PipelinesFile, p.Line))
	}
	return fmt.Sprintf("%s takes approvals of pipelines %s: their manual approval actions must notify "+
		"the stack's ReleaseApprovalTopicArn output or a topic listed in its ReleaseTopicArns parameter, "+
		"and their ARNs must be in ReleasePipelineArns, or the worker may not decide them (docs/releases.md)",
		PipelinesFile, strings.Join(matches, ", "))
}

// checkPipelines reports the problems of dir/pipelines.yaml, if there is one.
func checkPipelines(dir string) Problems {
	_, err := LoadPipelines(dir)
	var probs Problems
	switch {
	case err == nil:
		return nil
	case errors.As(err, &probs):
		return probs
	}
	return Problems{{File: filepath.Join(dir, PipelinesFile), Msg: err.Error()}}
}

// ParsePipelines parses a pipelines file:
//
//	pipelines:
//	  - match: web-prod          # a pipeline name, or a wildcard (web-*)
//	    approver_channel: C0RELEASE1
//	    approvals: 2             # distinct approvers, 1 to 10 (default 1)
//	    env: prod                # resource.env in approve_release rules
//
// Every problem is reported at once with its line, as Problems.
func ParsePipelines(file string, data []byte) (*release.Pipelines, error) {
	var probs Problems
	r := report{file: file, probs: &probs}
	out := &release.Pipelines{File: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		r.at(syntaxErrorLine(data, 0), "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, probs
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return out, nil
	}
	top := fields(r, PipelinesFile, deref(doc.Content[0]), []string{"pipelines"})
	seen := map[string]int{}
	if n, ok := top["pipelines"]; ok {
		for _, item := range routeSeq(r, "pipelines", n) {
			if p, ok := parsePipeline(r, item); ok {
				if first, dup := seen[p.Match]; dup {
					r.at(item.Line, "pipeline match %q is already defined at line %d", p.Match, first)
					continue
				}
				seen[p.Match] = item.Line
				out.Entries = append(out.Entries, p)
			}
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return out, nil
}

func parsePipeline(r report, n *yaml.Node) (release.Pipeline, bool) {
	before := len(*r.probs)
	f := fields(r, "pipeline", n, pipelineKeys)
	p := release.Pipeline{Line: n.Line, Approvals: 1}
	if v, ok := f["match"]; ok {
		if s, ok := str(r, "match", v); ok {
			if err := release.ValidateMatch(s); err != nil {
				r.at(v.Line, "%v", err)
			}
			p.Match = s
		}
	} else {
		r.at(n.Line, "pipeline needs a match (a pipeline name or wildcard)")
	}
	if v, ok := f["approver_channel"]; ok {
		p.Channel, _ = routeChannel(r, "approver_channel", v)
	} else {
		r.at(n.Line, "pipeline needs an approver_channel (a Slack channel id)")
	}
	if v, ok := f["approvals"]; ok {
		if s, ok := str(r, "approvals", v); ok {
			k, err := strconv.Atoi(s)
			if err != nil || k < 1 || k > MaxApprovals {
				r.at(v.Line, "approvals %q must be a whole number from 1 to %d", s, MaxApprovals)
			}
			p.Approvals = k
		}
	}
	if v, ok := f["env"]; ok {
		p.Env, _ = str(r, "env", v)
	}
	return p, len(*r.probs) == before
}
