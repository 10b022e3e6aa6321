package policies

import (
	"slices"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	"gopkg.in/yaml.v3"

	"github.com/tokken/tokken/bot/access"
)

// idcKeys are the profile keys of the identity-center kind.
var idcKeys = []string{"instance_arn", "accounts", "permission_set", "group"}

// checkIDC parses the keys of an identity-center profile (accounts and
// permission set required; instance_arn and group optional) and rejects
// them on other kinds.
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
	if n := f["instance_arn"]; n != nil {
		if s, ok := str(r, "instance_arn", n); ok {
			if access.ValidIDCInstanceARN(s) {
				sel.InstanceARN = s
			} else {
				r.at(n.Line, "instance_arn %q is not an IAM Identity Center instance ARN (arn:aws:sso:::instance/ssoins-0123456789abcdef)", s)
			}
		}
	}
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
	if sel.InstanceARN != "" && strings.HasPrefix(sel.PermissionSet, "arn:") {
		inst := sel.InstanceARN[strings.LastIndex(sel.InstanceARN, "/")+1:]
		if !strings.Contains(sel.PermissionSet, "/"+inst+"/") {
			r.at(f["permission_set"].Line, "permission_set %s is not of instance %s", sel.PermissionSet, sel.InstanceARN)
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
