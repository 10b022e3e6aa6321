package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretSource fetches the string value of a secret by ARN. The production
// implementation wraps the Secrets Manager client
// (secretsmanager.Client.GetSecretValue); tests point that client at a fake.
type SecretSource interface {
	SecretString(ctx context.Context, arn string) (string, error)
}

// SecretSourceFunc adapts a function to SecretSource.
type SecretSourceFunc func(ctx context.Context, arn string) (string, error)

// SecretString calls f.
func (f SecretSourceFunc) SecretString(ctx context.Context, arn string) (string, error) {
	return f(ctx, arn)
}

// SecretPlaceholder is the value template.yaml's Slack secret is created
// with, until the operator puts the Slack app's credentials in it.
const SecretPlaceholder = "set-me"

// ErrSecretNotFilledIn is returned (wrapped) by ResolveSecrets while the
// secret still holds SecretPlaceholder: the stack is deployed, the Slack
// app not yet connected. It is a state to wait out, not a broken
// configuration.
var ErrSecretNotFilledIn = errors.New("the Slack secret is not filled in yet")

// secrets are the variables a Secrets Manager secret may supply, each with
// the field it fills.
func (c *Config) secrets() []struct {
	name string
	dst  *Secret
} {
	return []struct {
		name string
		dst  *Secret
	}{
		{"SLACK_SIGNING_SECRET", &c.SlackSigningSecret},
		{"SLACK_BOT_TOKEN", &c.SlackBotToken},
		{"SLACK_APP_TOKEN", &c.SlackAppToken},
		{"MACKEREL_WEBHOOK_PASSWORD", &c.Alerts.WebhookPassword},
		{"MACKEREL_API_KEY", &c.Alerts.MackerelAPIKey},
	}
}

// ResolveSecrets fills the credentials (SLACK_SIGNING_SECRET,
// SLACK_BOT_TOKEN, SLACK_APP_TOKEN, MACKEREL_WEBHOOK_PASSWORD,
// MACKEREL_API_KEY) from the secret named by SecretsARN, a JSON object
// keyed by variable name (other keys are ignored), and then validates them
// as Load does without a secret. A value already set in the environment
// wins over the secret. Without SecretsARN it is a no-op. Error messages
// never contain secret values.
func (c *Config) ResolveSecrets(ctx context.Context, src SecretSource) error {
	if c.SecretsARN == "" {
		return nil
	}
	if src == nil {
		return errors.New("TOKKEN_SECRETS_ARN is set but no Secrets Manager client was given")
	}
	raw, err := src.SecretString(ctx, c.SecretsARN)
	if err != nil {
		return fmt.Errorf("TOKKEN_SECRETS_ARN: read secret %s: %w", c.SecretsARN, err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		// Do not wrap err: json syntax errors may quote the secret's text.
		return fmt.Errorf("TOKKEN_SECRETS_ARN: secret %s: want a JSON object keyed by variable name (SLACK_BOT_TOKEN, …)", c.SecretsARN)
	}
	for _, k := range c.secrets() {
		v, ok := m[k.name]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("TOKKEN_SECRETS_ARN: secret %s: %s: want a string", c.SecretsARN, k.name)
		}
		if strings.TrimSpace(s) == SecretPlaceholder && *k.dst == "" {
			return fmt.Errorf("TOKKEN_SECRETS_ARN: %w: %s in secret %s is still %q, as the template created it; "+
				"put the Slack app's credentials in the secret (docs/deploy.md, step 2)", ErrSecretNotFilledIn, k.name, c.SecretsARN, SecretPlaceholder)
		}
		if *k.dst == "" {
			*k.dst = Secret(strings.TrimSpace(s))
		}
	}
	if errs := c.checkSecrets(true); len(errs) > 0 {
		sortErrors(errs)
		return fmt.Errorf("after reading TOKKEN_SECRETS_ARN: %w", errors.Join(errs...))
	}
	return nil
}

// secretsManagerAPI is the one Secrets Manager call tokken makes.
type secretsManagerAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SecretsManager returns a SecretSource reading secrets with client (built
// from the SDK's config loading, so AWS_ENDPOINT_URL_SECRETS_MANAGER applies).
func SecretsManager(client secretsManagerAPI) SecretSource {
	return SecretSourceFunc(func(ctx context.Context, arn string) (string, error) {
		out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			return "", fmt.Errorf("get secret value: %w", err)
		}
		if out.SecretString == nil {
			return "", errors.New("secret has no string value (binary secrets are not supported)")
		}
		return *out.SecretString, nil
	})
}
