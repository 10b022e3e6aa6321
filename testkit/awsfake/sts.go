package awsfake

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// STS fakes AWS Security Token Service (query protocol, XML responses).
type STS struct {
	f           *Fake
	maxDuration map[string]int // role ARN → MaxSessionDuration; guarded by f.mu
	assumed     []AssumedRole  // guarded by f.mu
}

// AssumedRole records one successful AssumeRole call and what it returned.
type AssumedRole struct {
	// Request parameters, as received.
	RoleARN           string
	RoleSessionName   string
	DurationSeconds   int // as effective: 3600 when the request omitted it
	Policy            string
	PolicyARNs        []string
	SourceIdentity    string
	Tags              map[string]string
	TransitiveTagKeys []string
	// CallerARN is who called AssumeRole.
	CallerARN string
	// Issued credentials and identity.
	AccessKeyID    string
	AssumedRoleARN string // arn:aws:sts::<acct>:assumed-role/<role>/<session>
	AssumedRoleID  string // AROA...:<session>, the aws:userid of the session
	Expiration     time.Time
	// SecretAccessKey and SessionToken complete the issued credentials,
	// so tests can tell real ones from made-up strings ([STS.Issued]).
	SecretAccessKey string
	SessionToken    string
	// PackedPolicySize is the percentage of the packed-size limit used by
	// the session policy and tags, as returned to the caller. The fake
	// approximates STS's packing (compact JSON plus tag text over 2048).
	PackedPolicySize int
}

// DefaultMaxSessionDuration is an IAM role's MaxSessionDuration unless set
// with [STS.SetMaxSessionDuration] (IAM's own default).
const DefaultMaxSessionDuration = 3600

// SetMaxSessionDuration sets a role's MaxSessionDuration (3600..43200 in
// IAM), the cap on DurationSeconds for callers that are not role sessions.
func (s *STS) SetMaxSessionDuration(roleARN string, seconds int) {
	s.f.update(func() { s.maxDuration[roleARN] = seconds })
}

// AddCaller registers another identity: requests signed with accessKeyID act
// as arn (an IAM user "arn:aws:iam::<acct>:user/<name>" or a role session
// "arn:aws:sts::<acct>:assumed-role/<role>/<session>"). Roles assumed by an
// IAM user are not chained, so DurationSeconds may go up to the role's
// MaxSessionDuration.
func (s *STS) AddCaller(accessKeyID, arn string) {
	name := arn[strings.LastIndex(arn, "/")+1:]
	acct := AccountID
	if parts := strings.Split(arn, ":"); len(parts) > 4 {
		acct = parts[4]
	}
	s.f.update(func() {
		s.f.principals[accessKeyID] = &principal{arn: arn, userID: "AIDAFAKE" + strings.ToUpper(randomHex(6)), account: acct, sessionName: name}
	})
}

// AssumedRoles returns every successful AssumeRole call, oldest first.
func (s *STS) AssumedRoles() []AssumedRole {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	out := make([]AssumedRole, len(s.assumed))
	copy(out, s.assumed)
	return out
}

var (
	roleARNPattern        = regexp.MustCompile(`^arn:aws:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$`)
	policyARNPattern      = regexp.MustCompile(`^arn:aws:iam::(?:aws|\d{12}):policy/[\w+=,.@/-]+$`)
	sessionNamePattern    = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	sourceIdentityPattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	tagKeyPattern         = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
)

func validationError(format string, args ...any) *apiError {
	return clientErr("ValidationError", format, args...)
}

type assumeRoleResponse struct {
	XMLName xml.Name `xml:"AssumeRoleResponse"`
	stsMeta
	Result struct {
		SourceIdentity  string `xml:"SourceIdentity,omitempty"`
		AssumedRoleUser struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
		Credentials struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			SessionToken    string `xml:"SessionToken"`
			Expiration      string `xml:"Expiration"`
		} `xml:"Credentials"`
		PackedPolicySize *int `xml:"PackedPolicySize,omitempty"`
	} `xml:"AssumeRoleResult"`
}

func (s *STS) assumeRole(r *request) (any, *apiError) {
	in := AssumedRole{
		RoleARN:         r.form.Get("RoleArn"),
		RoleSessionName: r.form.Get("RoleSessionName"),
		Policy:          r.form.Get("Policy"),
		SourceIdentity:  r.form.Get("SourceIdentity"),
		CallerARN:       r.caller.arn,
		DurationSeconds: 3600,
	}
	m := roleARNPattern.FindStringSubmatch(in.RoleARN)
	if m == nil {
		return nil, validationError("1 validation error detected: Value '%s' at 'roleArn' failed to satisfy constraint: Member must be a role ARN (arn:aws:iam::<account>:role/<name>)", in.RoleARN)
	}
	roleAccount, roleName := m[1], m[2]
	if !sessionNamePattern.MatchString(in.RoleSessionName) {
		return nil, validationError("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]{2,64}", in.RoleSessionName)
	}
	if v := r.form.Get("DurationSeconds"); v != "" {
		d, err := strconv.Atoi(v)
		if err != nil {
			return nil, validationError("DurationSeconds %q is not an integer", v)
		}
		in.DurationSeconds = d
	}
	if in.DurationSeconds < 900 {
		return nil, validationError("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900", in.DurationSeconds)
	}
	s.f.mu.Lock()
	maxDur, ok := s.maxDuration[in.RoleARN]
	s.f.mu.Unlock()
	if !ok {
		maxDur = DefaultMaxSessionDuration
	}
	if r.caller.chained() && in.DurationSeconds > 3600 {
		return nil, validationError("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}
	if in.DurationSeconds > maxDur {
		return nil, validationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}

	packed := 0
	if in.Policy != "" {
		if len(in.Policy) > 2048 {
			return nil, validationError("1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to 2048")
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(in.Policy)); err != nil {
			return nil, clientErr("MalformedPolicyDocument", "Syntax errors in policy: %v", err)
		}
		packed += compact.Len()
	}
	in.PolicyARNs = queryList(r.form, "PolicyArns.member", ".arn")
	for i := range in.PolicyARNs {
		if !policyARNPattern.MatchString(in.PolicyARNs[i]) {
			return nil, validationError("Invalid policy ARN %q in PolicyArns", in.PolicyARNs[i])
		}
	}
	if len(in.PolicyARNs) > 10 {
		return nil, validationError("1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10")
	}
	if in.SourceIdentity != "" && (!sourceIdentityPattern.MatchString(in.SourceIdentity) || strings.HasPrefix(strings.ToLower(in.SourceIdentity), "aws:")) {
		return nil, validationError("1 validation error detected: Value '%s' at 'sourceIdentity' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", in.SourceIdentity)
	}
	for i := 1; ; i++ {
		k, ok := r.form[fmt.Sprintf("Tags.member.%d.Key", i)]
		if !ok {
			break
		}
		v := r.form.Get(fmt.Sprintf("Tags.member.%d.Value", i))
		if in.Tags == nil {
			in.Tags = map[string]string{}
		}
		key := k[0]
		if !tagKeyPattern.MatchString(key) || len(v) > 256 {
			return nil, validationError("Invalid session tag %q=%q: keys are 1-128 characters, values at most 256", key, v)
		}
		for existing := range in.Tags {
			if strings.EqualFold(existing, key) {
				return nil, validationError("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
			}
		}
		in.Tags[key] = v
		packed += len(key) + len(v)
	}
	if len(in.Tags) > 50 {
		return nil, validationError("1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	in.TransitiveTagKeys = queryList(r.form, "TransitiveTagKeys.member", "")
	for _, k := range in.TransitiveTagKeys {
		if _, ok := in.Tags[k]; !ok {
			return nil, validationError("Transitive tag key %q is not a session tag of this request", k)
		}
	}
	pct := (packed*100 + 2047) / 2048
	if pct > 100 {
		return nil, clientErr("PackedPolicyTooLarge", "Packed policy consumes %d%% of allotted space, please use smaller policy.", pct)
	}

	in.AccessKeyID = "ASIA" + strings.ToUpper(randomHex(8))
	in.AssumedRoleARN = fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", roleAccount, roleName, in.RoleSessionName)
	in.AssumedRoleID = "AROA" + strings.ToUpper(randomHex(8)) + ":" + in.RoleSessionName
	in.Expiration = r.now.Add(time.Duration(in.DurationSeconds) * time.Second).UTC().Truncate(time.Second)
	in.PackedPolicySize = pct
	in.SecretAccessKey, in.SessionToken = randomHex(20), "FakeSessionToken"+randomHex(32)

	s.f.update(func() {
		s.assumed = append(s.assumed, in)
		s.f.principals[in.AccessKeyID] = &principal{
			arn: in.AssumedRoleARN, userID: in.AssumedRoleID, account: roleAccount,
			sessionName: in.RoleSessionName, expires: in.Expiration, sessionPolicy: in.Policy,
		}
	})

	out := &assumeRoleResponse{}
	out.Result.SourceIdentity = in.SourceIdentity
	out.Result.AssumedRoleUser.Arn = in.AssumedRoleARN
	out.Result.AssumedRoleUser.AssumedRoleID = in.AssumedRoleID
	out.Result.Credentials.AccessKeyID = in.AccessKeyID
	out.Result.Credentials.SecretAccessKey = in.SecretAccessKey
	out.Result.Credentials.SessionToken = in.SessionToken
	out.Result.Credentials.Expiration = in.Expiration.Format(time.RFC3339)
	if in.Policy != "" || len(in.Tags) > 0 {
		out.Result.PackedPolicySize = &pct
	}
	return out, nil
}

type getCallerIdentityResponse struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	stsMeta
	Result struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
}

func (s *STS) getCallerIdentity(r *request) (any, *apiError) {
	out := &getCallerIdentityResponse{}
	out.Result.Arn = r.caller.arn
	out.Result.UserID = r.caller.userID
	out.Result.Account = r.caller.account
	return out, nil
}
