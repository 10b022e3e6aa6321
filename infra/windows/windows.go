// Package windows is the instance side of tokken's domain join and leave:
// the user-data PowerShell a Windows fleet runs on every boot
// (userdata.ps1), the instance-profile IAM policy it needs
// (instance-policy.json) and a CloudFormation launch template that puts both
// together (launch-template.yaml). The files are embedded; UserData and
// InstancePolicy render them for a configured tag vocabulary.
//
// The tag keys and values below are the one source of truth shared with the
// bot (bot/domainjoin reads them through DefaultScheme); the package tests
// check that the script's defaults, the policy and the template agree with
// them. The script cannot run here, so it is tested statically.
package windows

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/tokken/tokken/bot/domainjoin"
)

// Default tag keys and values. The bot writes TagControl and TagRequest; the
// script writes TagAck, TagStatus, TagProgress and TagReason; operators set
// TagSecret (the launch template does).
const (
	TagControl  = "domain"
	ValueJoin   = "join"
	ValueUnjoin = "unjoin"

	TagRequest = "domain-request"
	TagAck     = "domain-ack"

	TagStatus     = "domain-status"
	ValueJoined   = "joined"
	ValueUnjoined = "unjoined"
	ValueFailed   = "failed"
	ValuePending  = "pending"

	TagProgress = "domain-progress"
	TagReason   = "domain-reason"
	TagSecret   = "domain-secret"

	// DefaultMaxReboots bounds the reboots the script makes for one
	// request before it reports failure.
	DefaultMaxReboots = 2
)

// The embedded files. Read-only: every function copies before changing.
var (
	//go:embed userdata.ps1
	userDataFile string
	//go:embed instance-policy.json
	policyFile string
)

// DefaultScheme is the tag vocabulary the shipped script uses.
func DefaultScheme() domainjoin.TagScheme {
	return domainjoin.TagScheme{
		Control: TagControl, Join: ValueJoin, Unjoin: ValueUnjoin,
		Request: TagRequest, Ack: TagAck,
		Status: TagStatus, Joined: ValueJoined, Unjoined: ValueUnjoined, Failed: ValueFailed, Pending: ValuePending,
		Progress: TagProgress, Reason: TagReason,
	}
}

// Config is what UserData renders into the script.
type Config struct {
	// Tags is the vocabulary shared with the bot.
	Tags domainjoin.TagScheme
	// SecretTag is the tag whose value names the join secret, used when
	// SecretID is empty.
	SecretTag string
	// SecretID, when set, is the join secret's ARN or name, fixed in the
	// script instead of read from SecretTag. It is an identifier, not a
	// credential.
	SecretID string
	// MaxReboots bounds the script's own reboots per request (1-5).
	MaxReboots int
}

// DefaultConfig is the configuration the shipped userdata.ps1 carries.
func DefaultConfig() Config {
	return Config{Tags: DefaultScheme(), SecretTag: TagSecret, MaxReboots: DefaultMaxReboots}
}

// maxSecretID bounds Config.SecretID: a secret ARN or name.
const maxSecretID = 1000

var (
	// secretID is unbounded: a {1,1000} repeat compiles to a thousand-state
	// program that costs milliseconds to compile. Validate bounds the
	// length with maxSecretID instead.
	secretID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9/_+=.@:-]+$`) })
	// secretARN is a Secrets Manager secret ARN; the partition is captured.
	secretARN = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:(aws[a-z-]*):secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$`)
	})
)

// Validate checks that c renders into a script that works: keys usable as
// instance-metadata tag keys, plain values, distinct keys, a plausible
// secret id and a small reboot bound.
func (c Config) Validate() error {
	if err := c.Tags.Validate(); err != nil {
		return err
	}
	if !domainjoin.ValidTagKey(c.SecretTag) {
		return fmt.Errorf("secret tag %q: want %s", c.SecretTag, domainjoin.TagKeyRule)
	}
	for _, k := range c.Tags.ReadKeys() {
		if k == c.SecretTag {
			return fmt.Errorf("secret tag %q is also a domain tag key", c.SecretTag)
		}
	}
	if c.SecretID != "" && (len(c.SecretID) > maxSecretID || !secretID().MatchString(c.SecretID)) {
		return fmt.Errorf("secret id %q: want a secret ARN or name (A-Z a-z 0-9 / _ + = . @ : -)", c.SecretID)
	}
	if c.MaxReboots < 1 || c.MaxReboots > 5 {
		return fmt.Errorf("max reboots %d: want 1 to 5", c.MaxReboots)
	}
	return nil
}

// scriptVars maps the variables of the script's config block to their
// values under c. Every variable in the block must be here and vice versa.
func (c Config) scriptVars() map[string]string {
	t := c.Tags
	return map[string]string{
		"ControlTagKey": t.Control, "JoinValue": t.Join, "UnjoinValue": t.Unjoin,
		"RequestTagKey": t.Request, "AckTagKey": t.Ack,
		"StatusTagKey": t.Status, "JoinedValue": t.Joined, "UnjoinedValue": t.Unjoined,
		"FailedValue": t.Failed, "PendingValue": t.Pending,
		"ProgressTagKey": t.Progress, "ReasonTagKey": t.Reason,
		"SecretTagKey": c.SecretTag, "SecretId": c.SecretID,
		"MaxReboots": strconv.Itoa(c.MaxReboots),
	}
}

const (
	configBegin = "# ---- tokken config begin"
	configEnd   = "# ---- tokken config end"
)

// assignment is one line of the script's config block: $Name = 'value' or
// $Name = 123.
var assignment = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\$([A-Za-z]+)(\s*=\s*)(?:'([^']*)'|([0-9]+))\s*$`) })

// configBlock returns the line range [from, to) of the config block's
// assignments and the values they hold.
func configBlock(lines []string) (from, to int, vals map[string]string, err error) {
	from, to = -1, -1
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, configBegin) && from < 0:
			from = i + 1
		case strings.HasPrefix(l, configEnd) && from >= 0:
			to = i
		}
		if to >= 0 {
			break
		}
	}
	if from < 0 || to < 0 {
		return 0, 0, nil, fmt.Errorf("user data: config block markers not found")
	}
	vals = map[string]string{}
	for i := from; i < to; i++ {
		m := assignment().FindStringSubmatch(lines[i])
		if m == nil {
			return 0, 0, nil, fmt.Errorf("user data line %d: not a config assignment: %q", i+1, lines[i])
		}
		if _, dup := vals[m[1]]; dup {
			return 0, 0, nil, fmt.Errorf("user data line %d: $%s assigned twice", i+1, m[1])
		}
		vals[m[1]] = m[3] + m[4]
	}
	return from, to, vals, nil
}

// UserData renders the user data (<powershell>...</powershell> with
// <persist>true</persist>) for cfg. Paste it into a launch template, or
// base64 it for RunInstances. DefaultConfig renders the shipped file as is.
func UserData(cfg Config) (string, error) {
	if err := cfg.Validate(); err != nil {
		return "", fmt.Errorf("user data: %w", err)
	}
	lines := strings.Split(userDataFile, "\n")
	from, to, current, err := configBlock(lines)
	if err != nil {
		return "", err
	}
	want := cfg.scriptVars()
	if len(current) != len(want) {
		return "", fmt.Errorf("user data: config block has %d variables, renderer knows %d", len(current), len(want))
	}
	out := append([]string(nil), lines...)
	for i := from; i < to; i++ {
		m := assignment().FindStringSubmatch(out[i])
		v, ok := want[m[1]]
		if !ok {
			return "", fmt.Errorf("user data: renderer does not know $%s", m[1])
		}
		if m[4] != "" { // numeric
			out[i] = "$" + m[1] + m[2] + v
		} else {
			out[i] = "$" + m[1] + m[2] + "'" + v + "'"
		}
	}
	return strings.Join(out, "\n"), nil
}

// SecretARNPlaceholder is the Resource of the secret statement in the
// shipped instance-policy.json; InstancePolicy replaces it.
const SecretARNPlaceholder = "arn:aws:secretsmanager:REGION:ACCOUNT_ID:secret:JOIN_SECRET_NAME"

// policyDoc is an IAM policy document. Conditions are kept generic.
type policyDoc struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

type policyStatement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Action    string                    `json:"Action"`
	Resource  string                    `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// InstancePolicy renders the instance-profile policy for cfg and the join
// secret's ARN: tag only itself, only with cfg's script keys; describe tags
// (the fallback when metadata tags are off); read that one secret. ARNs
// take the secret's partition (aws, aws-cn, aws-us-gov).
func InstancePolicy(cfg Config, joinSecretARN string) (string, error) {
	if err := cfg.Validate(); err != nil {
		return "", fmt.Errorf("instance policy: %w", err)
	}
	m := secretARN().FindStringSubmatch(joinSecretARN)
	if m == nil {
		return "", fmt.Errorf("instance policy: %q is not a Secrets Manager secret ARN", joinSecretARN)
	}
	partition := m[1]
	var doc policyDoc
	if err := json.Unmarshal([]byte(policyFile), &doc); err != nil {
		return "", fmt.Errorf("instance policy: embedded file: %w", err)
	}
	for i := range doc.Statement {
		st := &doc.Statement[i]
		switch st.Action {
		case "ec2:CreateTags":
			keys, like := st.Condition["ForAllValues:StringEquals"], st.Condition["ArnLike"]
			arn, ok := like["ec2:SourceInstanceARN"].(string)
			if keys == nil || !ok {
				return "", fmt.Errorf("instance policy: embedded CreateTags statement lacks its conditions")
			}
			keys["aws:TagKeys"] = cfg.Tags.ScriptKeys()
			like["ec2:SourceInstanceARN"] = strings.Replace(arn, "arn:aws:", "arn:"+partition+":", 1)
			st.Resource = strings.Replace(st.Resource, "arn:aws:", "arn:"+partition+":", 1)
		case "secretsmanager:GetSecretValue":
			st.Resource = joinSecretARN
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return "", fmt.Errorf("instance policy: %w", err)
	}
	return string(b), nil
}
