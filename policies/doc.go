// Package policies is tokken's policy engine: who may do what. It loads a
// policy directory (TOKKEN_POLICY_DIR, default ./policies) holding
//
//   - profiles.yaml: the catalogue of access profiles (access.Catalogue);
//   - groups.yaml: groups of Slack users, by user id, e-mail or Slack user
//     group id, which may include other groups;
//   - *.cedar: Cedar rules (github.com/cedar-policy/cedar-go) deciding every
//     bot.Action (bot.Authorizer).
//
// Load validates all of it before anything runs: unknown keys, bad
// durations (Go syntax, whole minutes, at most MaxDuration = 12h), unknown
// kinds, missing role ARNs, negative approvals, references to unknown groups
// or profiles, include cycles, Cedar syntax errors, and rules that do not
// type-check against tokken's Cedar schema (unknown actions, attributes or
// entity types). Every problem is reported as "file:line: message"; Check
// returns all of them for `tokken policy check`.
//
// # Entity model
//
// The schema is tokken.cedarschema in this directory, compiled in:
//
//	principal  Tokken::User::"U…"       in Tokken::Group::"<groups.yaml name>" (attr email)
//	action     Tokken::Action::"<bot.Action>": request, approve, break_glass,
//	           revoke, extend, review, domain_join, domain_leave, alert_act
//	resource   Tokken::Profile::"<name>"  for request, break_glass, extend, and
//	                                      approve/revoke/review when the query names a profile
//	                                      (attrs kind, env, approvals, break_glass,
//	                                      default_minutes, max_minutes)
//	           Tokken::Instance::"i-…"    for domain_join/domain_leave, and approve/
//	                                      revoke/review of an operation on instances;
//	                                      EC2 tags are Cedar entity tags
//	           Tokken::Alert::"<id>"      for alert_act (context key "alert")
//	context    duration_minutes (rounded up), targets (ids), target_tags
//	           ("Key=Value"), hour and weekday ("Mon"…"Sun") in UTC, env,
//	           break_glass, requester (optional, a User), service, role, host,
//	           monitor
//
// A query naming several instances (domain actions) is decided per
// instance and allowed only if every instance is.
//
// # Decisions
//
// Cedar's rule holds: nothing is allowed unless a permit matches, and any
// matching forbid wins. On top of it, and whatever the rules say, the
// catalogue's own limits refuse a request: an unknown profile, a duration
// above the profile's max_duration, a target outside an ssm profile's
// instances (or any target on an sts profile), break-glass on a profile
// without break_glass. A forbid rule that fails to evaluate denies instead
// of being skipped. Decision.Reasons name the deciding rules by file:line
// (plus their @id and @reason annotations), or say "no rule permits
// <action> on <resource> for <user>".
//
// Self-approval: a requester never counts as an approver of their own
// request, whatever the rules say. That guarantee lives in bot/access
// (Request.Approve refuses it) and is deliberately not duplicated here; no
// rule in this package can lift it.
//
// Approvals: Decide returns the approvals an allowed request, extend or
// domain operation needs: the profile's approvals, raised by an
// @approvals("N") annotation on any deciding permit rule (the way domain
// rules require approval for Env=prod instances).
//
// A Set is immutable after Load and safe for concurrent use; to change
// policy, load a new Set.
package policies
