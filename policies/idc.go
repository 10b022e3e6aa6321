package policies

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	cedar "github.com/cedar-policy/cedar-go"
	"gopkg.in/yaml.v3"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

// idcKeys are the profile keys of the identity-center kind.
var idcKeys = []string{"accounts", "permission_set", "group"}

// checkIDC parses the keys of an identity-center profile (accounts and
// permission set required; group optional) and rejects them on other
// kinds. A profile names no Identity Center instance: tokken works on the
// one it is configured with (TOKKEN_IDC_INSTANCE_ARN) or finds, as an
// organisation has one.
func checkIDC(r report, what string, k *yaml.Node, f map[string]*yaml.Node, p *profile) {
	if p.Kind != access.KindIdentityCenter {
		for _, key := range idcKeys {
			if n := f[key]; n != nil && p.Kind != "" {
				r.at(n.Line, "%s only applies to identity-center profiles; %s is %s", key, what, p.Kind)
			}
		}
		return
	}
	sel := &p.IDC
	if n := f["accounts"]; n == nil {
		r.at(k.Line, "%s: identity-center profiles need accounts (one or more 12-digit AWS account ids)", what)
	} else {
		for _, it := range list(r, "accounts", n) {
			switch {
			case !access.ValidAccountID(it.Value):
				r.at(it.Line, "accounts: %q is not a 12-digit AWS account id", it.Value)
			case slices.Contains(sel.Accounts, it.Value):
				r.at(it.Line, "accounts: %s is listed twice", it.Value)
			default:
				sel.Accounts = append(sel.Accounts, it.Value)
			}
		}
		if len(sel.Accounts) == 0 && n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
			r.at(n.Line, "accounts is empty: list one or more 12-digit AWS account ids")
		}
	}
	if n := f["permission_set"]; n == nil {
		r.at(k.Line, "%s: identity-center profiles need permission_set (its name or ARN)", what)
	} else if s, ok := str(r, "permission_set", n); ok {
		if access.ValidPermissionSet(s) {
			sel.PermissionSet = s
		} else {
			r.at(n.Line, "permission_set %q is neither a permission set name (1-32 letters, digits and +=,.@-_) nor a permission set ARN", s)
		}
	}
	if n := f["group"]; n != nil {
		if s, ok := str(r, "group", n); ok {
			if access.ValidIDCGroupName(s) {
				sel.Group = s
			} else {
				r.at(n.Line, "group %q is not an Identity Store group display name (1-1024 characters on one line, no leading or trailing space)", s)
			}
		}
	}
	for _, key := range []string{"role_arn", "session_policy"} {
		if n := f[key]; n != nil {
			r.at(n.Line, "%s does not apply to identity-center profiles: Identity Center grants the permission set", key)
		}
	}
}

// idcAccount is the account rules see on an identity-center profile that
// offers one account; "" when it offers several (the request's account is
// then given per request, see idcProfileEntity).
func idcAccount(p profile) string {
	if len(p.IDC.Accounts) == 1 {
		return p.IDC.Accounts[0]
	}
	return ""
}

// idcProfileEntity is profile p as the resource of one identity-center
// request: its attributes, with account set to the account asked for.
func idcProfileEntity(p profile, account string) cedar.Entity {
	uid := cedar.NewEntityUID(typeProfile, cedar.String(p.Name))
	attrs := profileAttrs(p).Map()
	attrs["account"] = cedar.String(account)
	return cedar.Entity{UID: uid, Attributes: cedar.NewRecord(attrs)}
}

// idcUsersKey is groups.yaml's mapping of Slack users to IAM Identity
// Center users, for people whose Slack e-mail is not how Identity Center
// knows them.
const idcUsersKey = "identity_center_users"

// maxIDCUserName is the Identity Store's limit on user names.
const maxIDCUserName = 128

// parseIDCUsers reads identity_center_users: Slack user ids (U…/W…) or
// e-mail addresses (compared case-insensitively) to an Identity Center
// user name or e-mail. Each Slack user is mapped once.
func parseIDCUsers(r report, n *yaml.Node) map[string]string {
	out := map[string]string{}
	first := map[string]int{}
	eachKey(r, n, func(k, v *yaml.Node) {
		key := k.Value
		switch {
		case slackUserRE().MatchString(key):
		case emailRE().MatchString(key):
			key = strings.ToLower(key)
		default:
			r.at(k.Line, "%s: %q is neither a Slack user id (U…/W…) nor an e-mail address", idcUsersKey, k.Value)
			return
		}
		if line, dup := first[key]; dup {
			r.at(k.Line, "%s: %s is mapped twice (first at line %d)", idcUsersKey, k.Value, line)
			return
		}
		first[key] = k.Line
		s, ok := str(r, idcUsersKey+": "+k.Value, v)
		if !ok {
			return
		}
		if !validIDCUserName(s) {
			r.at(v.Line, "%s: %s maps to %q, which is not an IAM Identity Center user name or e-mail (1-%d characters, no spaces)",
				idcUsersKey, k.Value, s, maxIDCUserName)
			return
		}
		out[key] = s
	})
	return out
}

// validIDCUserName reports whether s can be an Identity Store user name or
// e-mail: 1 to maxIDCUserName characters, none of them a space or control
// character.
func validIDCUserName(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > maxIDCUserName || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) })
}

// IdentityCenterUser implements access.IdentityUsers: the Identity Center
// user name or e-mail identity_center_users maps p to, by Slack user id
// first, else by the e-mail Slack has for p.
func (s *Set) IdentityCenterUser(p bot.Principal) (string, bool) {
	if u, ok := s.idcUsers[p.ID]; ok {
		return u, true
	}
	if p.Email == "" {
		return "", false
	}
	u, ok := s.idcUsers[strings.ToLower(p.Email)]
	return u, ok
}
