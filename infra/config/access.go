package config

import (
	"net/url"
	"strings"
	"time"

	"github.com/tokken/tokken/bot/access"
)

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
	// IdentityCenter configures identity-center grants.
	IdentityCenter IdentityCenter
}

// IdentityCenter is where identity-center profiles are granted: the IAM
// Identity Center instance and its identity store (both discovered with
// sso:ListInstances when empty), the AWS access portal the requester's DM
// links to, and how often an assignment's status is polled.
type IdentityCenter struct {
	InstanceARN     string        // TOKKEN_IDC_INSTANCE_ARN
	IdentityStoreID string        // TOKKEN_IDC_IDENTITY_STORE_ID
	PortalURL       string        // TOKKEN_IDC_PORTAL_URL, e.g. https://d-1234567890.awsapps.com/start
	PollInterval    time.Duration // TOKKEN_IDC_POLL_INTERVAL (default DefaultIDCPollInterval)
}

// Configured reports whether any Identity Center variable is set.
func (c IdentityCenter) Configured() bool {
	return c.InstanceARN != "" || c.IdentityStoreID != "" || c.PortalURL != ""
}

// DefaultIDCPollInterval is how often an account assignment's creation or
// deletion status is asked for.
const DefaultIDCPollInterval = 2 * time.Second

// parseAccess reads the access feature's variables.
func parseAccess(get func(string) string, p *problems) Access {
	a := Access{
		AuditChannel:     p.channel("TOKKEN_AUDIT_CHANNEL", get("TOKKEN_AUDIT_CHANNEL")),
		GrantBoundaryARN: get("TOKKEN_GRANT_BOUNDARY_ARN"),
	}
	if v := a.GrantBoundaryARN; v != "" && !isPolicyARN(v) {
		p.bad("TOKKEN_GRANT_BOUNDARY_ARN", "a managed policy ARN such as arn:aws:iam::<account>:policy/tokken-grant-boundary", v)
	}
	a.IdentityCenter = parseIdentityCenter(get, p)
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
	okAcct := acct == "aws" || access.ValidAccountID(acct)
	return okAcct && name != p[5] && name != "" && !strings.HasSuffix(name, "/") && !strings.ContainsAny(name, " *?")
}

// parseIdentityCenter reads the TOKKEN_IDC_* variables.
func parseIdentityCenter(get func(string) string, p *problems) IdentityCenter {
	c := IdentityCenter{
		InstanceARN:     get("TOKKEN_IDC_INSTANCE_ARN"),
		IdentityStoreID: get("TOKKEN_IDC_IDENTITY_STORE_ID"),
		PortalURL:       strings.TrimRight(get("TOKKEN_IDC_PORTAL_URL"), "/"),
		PollInterval:    DefaultIDCPollInterval,
	}
	if v := c.InstanceARN; v != "" && !access.ValidIDCInstanceARN(v) {
		p.bad("TOKKEN_IDC_INSTANCE_ARN", "an IAM Identity Center instance ARN such as arn:aws:sso:::instance/ssoins-0123456789abcdef", v)
	}
	if v := c.IdentityStoreID; v != "" && (len(v) > 64 || strings.ContainsAny(v, " /:") || !strings.Contains(v, "-")) {
		p.bad("TOKKEN_IDC_IDENTITY_STORE_ID", "an identity store id such as d-1234567890", v)
	}
	if v := c.PortalURL; v != "" {
		if u, err := url.Parse(v); err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
			(u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			p.bad("TOKKEN_IDC_PORTAL_URL", "the AWS access portal's https start URL such as https://d-1234567890.awsapps.com/start", v)
		}
	}
	if v := get("TOKKEN_IDC_POLL_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Millisecond || d > time.Minute {
			p.bad("TOKKEN_IDC_POLL_INTERVAL", "a duration between 10ms and 1m such as 2s", v)
		} else {
			c.PollInterval = d
		}
	}
	return c
}
