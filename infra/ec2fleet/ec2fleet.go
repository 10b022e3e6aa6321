// Package ec2fleet is tokken's view of the EC2 instances it grants access
// to and acts on. [Fleet] implements access.Inventory (instance ids to
// targets with their tags, for profile selectors and policies) and
// domainjoin.Instances (find by id or Name tag, tag, reboot), lists the live
// fleet for the store-backed instance index ([Fleet.List], used by
// infra/instindex) and searches EC2 live, ranked as the index's search
// ranks (instindex.Rank).
//
// EC2 errors are mapped once, here: an instance that does not exist is an
// empty result where the port says so and a bot.Permanent error where an
// action needs it; a malformed id, a refused action (wrong state, access
// denied, bad tag) is bot.Permanent, so a job fails at once with EC2's
// reason instead of being retried. Throttling and server errors are retried
// by the SDK retryer that infra/awsconfig configures.
//
// The worker's role needs ec2:DescribeInstances, and for the domain flow
// ec2:CreateTags (restrict it with aws:TagKeys) and ec2:RebootInstances.
package ec2fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/instindex"
)

// maxSearchScan bounds how many instances one Search looks at, so that a
// short query on a large fleet still answers within Slack's 3 seconds.
const maxSearchScan = 1000

// maxFilterValues is how many values EC2 accepts in one filter.
const maxFilterValues = 200

// Fleet reads and changes EC2 instances. Create it with [New]; it is safe
// for concurrent use.
type Fleet struct {
	ec2 *ec2.Client
}

var (
	_ access.Inventory     = (*Fleet)(nil)
	_ domainjoin.Instances = (*Fleet)(nil)
)

// New returns a Fleet using cfg (from infra/awsconfig.Load, which honours
// AWS_ENDPOINT_URL_EC2).
func New(cfg aws.Config) *Fleet { return &Fleet{ec2: ec2.NewFromConfig(cfg)} }

// Instances returns the live instances among ids (pending, running,
// stopping, stopped) with their tags, in the order of ids; ids that do not
// exist or whose instance is shutting down or terminated are left out. A
// malformed id is a bot.Permanent error.
func (f *Fleet) Instances(ctx context.Context, ids []string) ([]bot.Target, error) {
	var uniq []string
	for _, id := range ids {
		if !bot.IsInstanceID(id) {
			return nil, bot.Permanent(fmt.Errorf("look up instances: %q is not an instance id (i- and 8 or 17 hex digits)", id))
		}
		if !slices.Contains(uniq, id) {
			uniq = append(uniq, id)
		}
	}
	found := map[string]ec2types.Instance{}
	// An instance-id filter, unlike InstanceIds, leaves unknown ids out
	// instead of failing the whole call with InvalidInstanceID.NotFound.
	for chunk := range slices.Chunk(uniq, maxFilterValues) {
		err := f.describe(ctx, []ec2types.Filter{
			{Name: aws.String("instance-id"), Values: chunk},
			{Name: aws.String("instance-state-name"), Values: instindex.LiveStates()},
		}, 0, func(in ec2types.Instance) { found[aws.ToString(in.InstanceId)] = in })
		if err != nil {
			return nil, fmt.Errorf("look up instances: %w", err)
		}
	}
	out := make([]bot.Target, 0, len(found))
	for _, id := range uniq {
		if in, ok := found[id]; ok {
			out = append(out, target(in))
		}
	}
	return out, nil
}

// Find returns the instances ref may mean, terminated ones included: the
// instance with that id when ref is an instance id, else every instance
// whose Name tag is exactly ref. No match is an empty slice and a nil error.
func (f *Fleet) Find(ctx context.Context, ref string) ([]domainjoin.Instance, error) {
	if ref == "" {
		return nil, nil
	}
	var out []domainjoin.Instance
	keep := func(in ec2types.Instance) { out = append(out, instance(in)) }
	if bot.IsInstanceID(ref) {
		err := f.describeIDs(ctx, []string{ref}, keep)
		if code(err) == "InvalidInstanceID.NotFound" {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("find instance %s: %w", ref, err)
		}
		return out, nil
	}
	// The exact comparison narrows what escapeWildcards lets through.
	err := f.describe(ctx, []ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{escapeWildcards(ref)}}}, 0,
		func(in ec2types.Instance) {
			if name(in) == ref {
				keep(in)
			}
		})
	if err != nil {
		return nil, fmt.Errorf("find instances named %q: %w", ref, err)
	}
	return out, nil
}

// SetTags creates or overwrites tags on the instance (CreateTags). An
// unknown or malformed instance, or tags EC2 refuses, is bot.Permanent.
func (f *Fleet) SetTags(ctx context.Context, instanceID string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	in := &ec2.CreateTagsInput{Resources: []string{instanceID}}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		in.Tags = append(in.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	if _, err := f.ec2.CreateTags(ctx, in); err != nil {
		return mapErr(fmt.Sprintf("tag instance %s", instanceID), err)
	}
	return nil
}

// Reboot asks EC2 to reboot the instance (RebootInstances). An unknown
// instance, or one not running, is bot.Permanent.
func (f *Fleet) Reboot(ctx context.Context, instanceID string) error {
	if _, err := f.ec2.RebootInstances(ctx, &ec2.RebootInstancesInput{InstanceIds: []string{instanceID}}); err != nil {
		return mapErr(fmt.Sprintf("reboot instance %s", instanceID), err)
	}
	return nil
}

// Search asks EC2 for up to limit live instances matching query, chosen and
// ordered by instindex.Rank. The access modal searches the store-backed index
// (infra/instindex) instead, so that the ingress needs no EC2 permission;
// Search is for callers that hold EC2 access and want the live answer.
//
// EC2 filters are case-sensitive, so the Name filter asks for the query as
// typed, in lower case, in upper case and capitalised (`*web*`, `*WEB*`,
// `*Web*`); a Name in other mixed case (`wEb-01`) is found by its id or by
// typing it as it is written. At most 1,000 instances are examined per
// search.
func (f *Fleet) Search(ctx context.Context, query string, limit int) ([]bot.Target, error) {
	q := strings.TrimSpace(query)
	lq := strings.ToLower(q)
	live := ec2types.Filter{Name: aws.String("instance-state-name"), Values: instindex.LiveStates()}
	seen := map[string]ec2types.Instance{}
	add := func(in ec2types.Instance) {
		if len(seen) < maxSearchScan {
			seen[aws.ToString(in.InstanceId)] = in
		}
	}
	if q == "" {
		if err := f.describe(ctx, []ec2types.Filter{live}, maxSearchScan, add); err != nil {
			return nil, fmt.Errorf("search instances: %w", err)
		}
	} else {
		var variants []string
		for _, v := range []string{q, lq, strings.ToUpper(q), capitalise(lq)} {
			if v = "*" + escapeWildcards(v) + "*"; !slices.Contains(variants, v) {
				variants = append(variants, v)
			}
		}
		if err := f.describe(ctx, []ec2types.Filter{live, {Name: aws.String("tag:Name"), Values: variants}}, maxSearchScan, add); err != nil {
			return nil, fmt.Errorf("search instances named like %q: %w", q, err)
		}
		if strings.HasPrefix("i-", lq) || strings.HasPrefix(lq, "i-") {
			idPattern := escapeWildcards(lq) + "*"
			if err := f.describe(ctx, []ec2types.Filter{live, {Name: aws.String("instance-id"), Values: []string{idPattern}}}, maxSearchScan, add); err != nil {
				return nil, fmt.Errorf("search instances with ids like %q: %w", q, err)
			}
		}
	}

	found := make([]domainjoin.Instance, 0, len(seen))
	for _, in := range seen {
		found = append(found, instance(in))
	}
	return instindex.Rank(q, found, limit), nil
}

// capitalise upper-cases the first letter of s.
func capitalise(s string) string {
	for i, r := range s {
		return strings.ToUpper(string(r)) + s[i+len(string(r)):]
	}
	return s
}

// escapeWildcards makes s safe as a literal in an EC2 filter value, where *
// and ? are wildcards and \ escapes: each of them becomes ?, which matches
// any one character, the original included. The result matches a superset
// of s; callers compare exactly afterwards.
func escapeWildcards(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '*' || r == '?' || r == '\\' {
			return '?'
		}
		return r
	}, s)
}

// List returns every live instance (pending, running, stopping, stopped)
// with its Name, state, platform and tags, paging through DescribeInstances
// 1,000 instances at a time. It is what infra/instindex refreshes its index
// from.
func (f *Fleet) List(ctx context.Context) ([]domainjoin.Instance, error) {
	var out []domainjoin.Instance
	live := ec2types.Filter{Name: aws.String("instance-state-name"), Values: instindex.LiveStates()}
	if err := f.describe(ctx, []ec2types.Filter{live}, 0, func(in ec2types.Instance) { out = append(out, instance(in)) }); err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return out, nil
}

// describe pages through DescribeInstances with filters, calling fn for
// every instance, and stops after limit instances (0: no bound).
func (f *Fleet) describe(ctx context.Context, filters []ec2types.Filter, limit int, fn func(ec2types.Instance)) error {
	p := ec2.NewDescribeInstancesPaginator(f.ec2, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(1000)})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return mapErr("describe instances", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				fn(in)
				if n++; limit > 0 && n >= limit {
					return nil
				}
			}
		}
	}
	return nil
}

// describeIDs describes the given instance ids (no pagination: EC2 refuses
// MaxResults with InstanceIds).
func (f *Fleet) describeIDs(ctx context.Context, ids []string, fn func(ec2types.Instance)) error {
	out, err := f.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		return mapErr("describe instances", err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			fn(in)
		}
	}
	return nil
}

// permanent are EC2 error codes that retrying cannot fix.
var permanent = map[string]bool{
	"InvalidInstanceID.NotFound":  true,
	"InvalidInstanceID.Malformed": true,
	"InvalidID":                   true,
	"IncorrectState":              true,
	"IncorrectInstanceState":      true,
	"UnauthorizedOperation":       true,
	"InvalidParameterValue":       true,
	"InvalidParameterCombination": true,
	"MissingParameter":            true,
	"TagLimitExceeded":            true,
}

// mapErr wraps err with op, as bot.Permanent when EC2's code says retrying
// cannot help.
func mapErr(op string, err error) error {
	wrapped := fmt.Errorf("%s: %w", op, err)
	if permanent[code(err)] {
		return bot.Permanent(wrapped)
	}
	return wrapped
}

// code returns err's AWS error code, "" when it has none.
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func tags(in ec2types.Instance) map[string]string {
	if len(in.Tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(in.Tags))
	for _, t := range in.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func name(in ec2types.Instance) string {
	for _, t := range in.Tags {
		if aws.ToString(t.Key) == "Name" {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func target(in ec2types.Instance) bot.Target {
	return bot.Target{ID: aws.ToString(in.InstanceId), Tags: tags(in)}
}

func instance(in ec2types.Instance) domainjoin.Instance {
	out := domainjoin.Instance{ID: aws.ToString(in.InstanceId), Name: name(in), Platform: string(in.Platform), Tags: tags(in)}
	if in.State != nil {
		out.State = string(in.State.Name)
	}
	return out
}
