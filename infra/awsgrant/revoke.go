package awsgrant

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

// RevokedPolicyName is the inline role policy holding revoked grants.
const RevokedPolicyName = "tokken-revoked"

// MaxPolicyChars is IAM's limit on a role's inline policies (aggregate,
// whitespace excluded); Revoke refuses to write a bigger revocation policy.
const MaxPolicyChars = 10240

// revokedSidPrefix starts the Sid of every statement Revoke manages; the
// rest of the Sid is the statement's expiry hour (yyyymmddhh, UTC).
const revokedSidPrefix = "TokkenRevokedUntil"

// revokeAttempts bounds how often Revoke merges again after finding its
// entry missing on read-back (a concurrent writer in another process).
const revokeAttempts = 3

// keepAfterWindow is how long after a grant's window end its entry is kept:
// tokken's credentials live at most this long (STS's role-chaining cap) and
// none is issued after the window end.
const keepAfterWindow = access.MaxSessionSeconds * time.Second

// Revoke denies every action to every credential issued for gr, from the
// moment IAM propagates the change (see the package documentation for what
// that guarantees). It merges gr's entry into the role's [RevokedPolicyName]
// policy, pruning entries that protect nothing any more, and checks by
// reading the policy back. Revoking twice, or revoking a grant that never got
// a role, is not an error; neither is a role that no longer exists (its
// sessions lost their permissions with it).
func (g *Granter) Revoke(ctx context.Context, gr access.Grant) error {
	if gr.RoleARN == "" {
		return nil
	}
	role, err := parseRoleARN(gr.RoleARN)
	if err != nil {
		return bot.Permanent(fmt.Errorf("revoke %s: %w", gr.RequestID, err))
	}
	if !validSessionName(gr.RequestID) {
		return bot.Permanent(fmt.Errorf("revoke: request id %q is not a role session name", gr.RequestID))
	}
	acct, err := g.callerAccount(ctx)
	if err != nil {
		return fmt.Errorf("revoke %s: %w", gr.RequestID, err)
	}
	if role.account != acct {
		return bot.Permanent(fmt.Errorf("revoke %s: role %s is in account %s but tokken runs in %s: its IAM policy cannot be changed from here", gr.RequestID, gr.RoleARN, role.account, acct))
	}

	now := g.opts.Now()
	until := revokeUntil(gr.Window.ExpiresAt, now)

	g.revokeMu.Lock()
	defer g.revokeMu.Unlock()
	for range revokeAttempts {
		cur, exists, err := g.readRevoked(ctx, role.name)
		if err != nil {
			return fmt.Errorf("revoke %s: %w", gr.RequestID, err)
		}
		next := cur.clone()
		next.add(gr.RequestID, until)
		next.prune(now)
		if exists && next.equal(cur) {
			return nil // already revoked, nothing to prune
		}
		gone, err := g.writeRevoked(ctx, role.name, next)
		if err != nil {
			return fmt.Errorf("revoke %s: %w", gr.RequestID, err)
		}
		if gone {
			g.opts.Logger.WarnContext(ctx, "revoke: role no longer exists", "request", gr.RequestID, "role", gr.RoleARN)
			return nil
		}
		back, _, err := g.readRevoked(ctx, role.name)
		if err != nil {
			return fmt.Errorf("revoke %s: read back: %w", gr.RequestID, err)
		}
		if back.covers(gr.RequestID, until) {
			g.opts.Logger.InfoContext(ctx, "revoked grant credentials", "request", gr.RequestID, "role", gr.RoleARN,
				"policy", RevokedPolicyName, "until", until, "entries", len(next.entries))
			return nil
		}
	}
	return fmt.Errorf("revoke %s: the %s policy on role %s lost the entry %d times in a row (concurrent writers?)", gr.RequestID, RevokedPolicyName, role.name, revokeAttempts)
}

// revokeUntil is when an entry may be pruned: one hour after the later of
// the window end and now, rounded up to the hour (so entries group into few
// statements).
func revokeUntil(windowEnd, now time.Time) time.Time {
	ref := now
	if windowEnd.After(ref) {
		ref = windowEnd
	}
	t := ref.UTC().Add(keepAfterWindow)
	if r := t.Truncate(time.Hour); !r.Equal(t) {
		t = r.Add(time.Hour)
	}
	return t
}

// revoked is the content of the revocation policy: tokken's entries (request
// id → until when the deny holds) and any statement tokken does not manage,
// kept verbatim.
type revoked struct {
	entries map[string]time.Time
	foreign []json.RawMessage
}

func (r revoked) clone() revoked {
	return revoked{entries: maps.Clone(r.entries), foreign: slices.Clone(r.foreign)}
}

// add records id until at least until.
func (r *revoked) add(id string, until time.Time) {
	if r.entries == nil {
		r.entries = map[string]time.Time{}
	}
	if cur, ok := r.entries[id]; !ok || cur.Before(until) {
		r.entries[id] = until
	}
}

// prune drops entries whose deny no longer holds at now.
func (r *revoked) prune(now time.Time) {
	maps.DeleteFunc(r.entries, func(_ string, until time.Time) bool { return !now.Before(until) })
}

func (r revoked) covers(id string, until time.Time) bool {
	got, ok := r.entries[id]
	return ok && !got.Before(until)
}

func (r revoked) equal(o revoked) bool {
	return maps.EqualFunc(r.entries, o.entries, time.Time.Equal) &&
		slices.EqualFunc(r.foreign, o.foreign, func(a, b json.RawMessage) bool { return string(a) == string(b) })
}

// revokedStatement is the statement shape Revoke writes: deny everything to
// the listed role sessions while aws:CurrentTime is before the Sid's hour.
type revokedStatement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Action    string                    `json:"Action"`
	Resource  string                    `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition"`
}

// document renders r as compact policy JSON: foreign statements first, then
// one statement per expiry hour listing "*:<request id>" patterns, sorted.
func (r revoked) document() ([]byte, error) {
	byUntil := map[time.Time][]string{}
	for id, until := range r.entries {
		byUntil[until] = append(byUntil[until], "*:"+id)
	}
	stmts := slices.Clone(r.foreign)
	for _, until := range slices.SortedFunc(maps.Keys(byUntil), time.Time.Compare) {
		ids := byUntil[until]
		slices.Sort(ids)
		b, err := json.Marshal(revokedStatement{
			Sid: revokedSidPrefix + until.UTC().Format("2006010215"), Effect: "Deny", Action: "*", Resource: "*",
			Condition: map[string]map[string]any{
				"StringLike":   {"aws:userid": ids},
				"DateLessThan": {"aws:CurrentTime": until.UTC().Format(time.RFC3339)},
			},
		})
		if err != nil {
			return nil, fmt.Errorf("encode revocation statement: %w", err)
		}
		stmts = append(stmts, b)
	}
	doc, err := json.Marshal(struct {
		Version   string            `json:"Version"`
		Statement []json.RawMessage `json:"Statement"`
	}{"2012-10-17", stmts})
	if err != nil {
		return nil, fmt.Errorf("encode revocation policy: %w", err)
	}
	return doc, nil
}

// parseRevoked reads a revocation policy document. Statements with tokken's
// Sid prefix must have the shape Revoke writes; others are kept as they are.
func parseRevoked(doc string) (revoked, error) {
	var pol struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(doc), &pol); err != nil {
		return revoked{}, fmt.Errorf("parse %s policy: %w", RevokedPolicyName, err)
	}
	var stmts []json.RawMessage
	if err := json.Unmarshal(pol.Statement, &stmts); err != nil {
		stmts = []json.RawMessage{pol.Statement} // a single statement object
	}
	out := revoked{entries: map[string]time.Time{}}
	for _, raw := range stmts {
		var st struct {
			Sid       string
			Condition struct {
				StringLike struct {
					UserID []string `json:"aws:userid"`
				}
				DateLessThan struct {
					CurrentTime string `json:"aws:CurrentTime"`
				}
			}
		}
		if err := json.Unmarshal(raw, &st); err != nil || !strings.HasPrefix(st.Sid, revokedSidPrefix) {
			out.foreign = append(out.foreign, compact(raw))
			continue
		}
		until, err := time.Parse(time.RFC3339, st.Condition.DateLessThan.CurrentTime)
		if err != nil {
			return revoked{}, fmt.Errorf("parse %s policy: statement %s: aws:CurrentTime: %w", RevokedPolicyName, st.Sid, err)
		}
		for _, pat := range st.Condition.StringLike.UserID {
			id, ok := strings.CutPrefix(pat, "*:")
			if !ok || !validSessionName(id) {
				return revoked{}, fmt.Errorf("parse %s policy: statement %s: unexpected aws:userid pattern %q", RevokedPolicyName, st.Sid, pat)
			}
			out.add(id, until.UTC())
		}
	}
	return out, nil
}

// compact returns raw without insignificant whitespace (raw as is if it is
// not valid JSON, which cannot happen for a statement IAM accepted).
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// readRevoked fetches and parses the role's revocation policy; exists is
// false when the role has none (or the role itself is missing: the write
// tells the two apart).
func (g *Granter) readRevoked(ctx context.Context, roleName string) (r revoked, exists bool, err error) {
	out, err := g.iam.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(roleName), PolicyName: aws.String(RevokedPolicyName)})
	if errorCode(err) == "NoSuchEntity" {
		return revoked{}, false, nil
	}
	if err != nil {
		return revoked{}, false, classify(fmt.Sprintf("get %s policy of role %s", RevokedPolicyName, roleName), err)
	}
	// IAM returns policy documents URL-encoded (RFC 3986).
	doc, err := url.PathUnescape(aws.ToString(out.PolicyDocument))
	if err != nil {
		return revoked{}, false, fmt.Errorf("get %s policy of role %s: decode document: %w", RevokedPolicyName, roleName, err)
	}
	r, err = parseRevoked(doc)
	if err != nil {
		return revoked{}, false, fmt.Errorf("role %s: %w", roleName, err)
	}
	return r, true, nil
}

// writeRevoked stores r as the role's revocation policy. gone reports that
// the role does not exist.
func (g *Granter) writeRevoked(ctx context.Context, roleName string, r revoked) (gone bool, err error) {
	doc, err := r.document()
	if err != nil {
		return false, err
	}
	if len(doc) > MaxPolicyChars {
		return false, fmt.Errorf("the %s policy of role %s would be %d characters with %d revoked grants, over IAM's %d: entries expire an hour after their window ends",
			RevokedPolicyName, roleName, len(doc), len(r.entries), MaxPolicyChars)
	}
	_, err = g.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName: aws.String(roleName), PolicyName: aws.String(RevokedPolicyName), PolicyDocument: aws.String(string(doc)),
	})
	if errorCode(err) == "NoSuchEntity" {
		return true, nil
	}
	if err != nil {
		return false, classify(fmt.Sprintf("put %s policy on role %s", RevokedPolicyName, roleName), err)
	}
	return false, nil
}
