package awsfake

import (
	"strings"
	"time"
)

// SecretsManager fakes AWS Secrets Manager's GetSecretValue (AWS JSON 1.1)
// for secrets the test registers with [SecretsManager.Put].
type SecretsManager struct {
	f       *Fake
	secrets map[string]*secret // by name; guarded by f.mu
}

type secret struct {
	name, arn, value, version string
	created                   time.Time
}

// Put creates or replaces a secret's current string value and returns its
// ARN. Replacing keeps the ARN and issues a new version id.
func (m *SecretsManager) Put(name, value string) (arn string) {
	m.f.update(func() {
		s, ok := m.secrets[name]
		if !ok {
			s = &secret{name: name, arn: "arn:aws:secretsmanager:" + Region + ":" + AccountID + ":secret:" + name + "-" + randomHex(3), created: m.f.now()}
			m.secrets[name] = s
		}
		s.value = value
		s.version = requestID()
		arn = s.arn
	})
	return arn
}

func (m *SecretsManager) getSecretValue(r *request) (any, *apiError) {
	var in struct {
		SecretID     string `json:"SecretId"`
		VersionID    string `json:"VersionId"`
		VersionStage string `json:"VersionStage"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	if in.SecretID == "" {
		return nil, clientErr("InvalidParameterException", "You must provide a SecretId.")
	}
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	var found *secret
	for _, s := range m.secrets {
		// By name, full ARN, or ARN without the random suffix.
		if in.SecretID == s.name || in.SecretID == s.arn || in.SecretID == s.arn[:strings.LastIndex(s.arn, "-")] {
			found = s
			break
		}
	}
	notFound := &apiError{status: 400, code: "ResourceNotFoundException", msg: "Secrets Manager can't find the specified secret.", sender: true}
	if found == nil {
		return nil, notFound
	}
	if (in.VersionID != "" && in.VersionID != found.version) || (in.VersionStage != "" && in.VersionStage != "AWSCURRENT") {
		return nil, &apiError{status: 400, code: "ResourceNotFoundException", msg: "Secrets Manager can't find the specified secret value for staging label: " + in.VersionStage, sender: true}
	}
	return map[string]any{
		"ARN":           found.arn,
		"Name":          found.name,
		"SecretString":  found.value,
		"VersionId":     found.version,
		"VersionStages": []string{"AWSCURRENT"},
		"CreatedDate":   epoch(found.created),
	}, nil
}
