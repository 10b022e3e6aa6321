package config

import "strings"

// Access is the configuration of the access feature (/access) beyond what
// Config holds for everyone (the time zone is Config.Location, the
// federation endpoint Config.FederationURL, the channel of tokken's own
// alerts Config.OpsChannel).
type Access struct {
	// AuditChannel receives one line per audited transition (access
	// requests and domain operations alike) and the loud break-glass
	// announcements (TOKKEN_AUDIT_CHANNEL). Empty: the audit trail goes to
	// the store and the log only, and break-glass is announced in the
	// profile's approver channel instead.
	AuditChannel string
	// GrantBoundaryARN is the permissions boundary every granted role must
	// carry (TOKKEN_GRANT_BOUNDARY_ARN): tokken refuses to grant a role
	// without it. Empty: the policy tokken-grant-boundary of the role's own
	// account.
	GrantBoundaryARN string
	// ProtectedARNs are tokken's own resources (TOKKEN_PROTECTED_ARNS,
	// comma-separated ARNs, IAM wildcards allowed): every grant's session
	// policy denies every action on them. On Lambda the function's own ARN
	// is added (Config.LambdaFunction).
	ProtectedARNs []string
}

// parseAccess reads the access feature's variables.
func parseAccess(get func(string) string, p *problems) Access {
	a := Access{
		AuditChannel:     p.channel("TOKKEN_AUDIT_CHANNEL", get("TOKKEN_AUDIT_CHANNEL")),
		GrantBoundaryARN: get("TOKKEN_GRANT_BOUNDARY_ARN"),
	}
	if v := a.GrantBoundaryARN; v != "" && !isPolicyARN(v) {
		p.bad("TOKKEN_GRANT_BOUNDARY_ARN", "a managed policy ARN such as arn:aws:iam::<account>:policy/tokken-grant-boundary", v)
	}
	for _, v := range strings.Split(get("TOKKEN_PROTECTED_ARNS"), ",") {
		switch v = strings.TrimSpace(v); {
		case v == "":
		case !strings.HasPrefix(v, "arn:"):
			p.bad("TOKKEN_PROTECTED_ARNS", "comma-separated ARNs (arn:aws:…)", v)
		default:
			a.ProtectedARNs = append(a.ProtectedARNs, v)
		}
	}
	return a
}

// isPolicyARN reports whether s is an IAM managed policy ARN,
// arn:<partition>:iam::<account or "aws">:policy/[path/]name. (No regexp:
// every package-level pattern is compiled in each Lambda cold start.)
func isPolicyARN(s string) bool {
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || p[0] != "arn" || !strings.HasPrefix(p[1], "aws") || p[2] != "iam" || p[3] != "" {
		return false
	}
	acct, name := p[4], strings.TrimPrefix(p[5], "policy/")
	okAcct := acct == "aws" || len(acct) == 12 && strings.Trim(acct, "0123456789") == ""
	return okAcct && name != p[5] && name != "" && !strings.HasSuffix(name, "/") && !strings.ContainsAny(name, " *?")
}
