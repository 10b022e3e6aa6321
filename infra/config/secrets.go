package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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

// secretKeys are the variables a Secrets Manager secret may supply.
var secretKeys = []string{"SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"}

// ResolveSecrets fills the Slack credentials from the secret named by
// SecretsARN (a JSON object keyed by variable name; keys other than the
// SLACK_* credentials are ignored) and then validates them as Load would.
// A value already set in the environment wins over the secret. Without
// SecretsARN it is a no-op. Error messages never contain secret values.
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
		return fmt.Errorf("TOKKEN_SECRETS_ARN: secret %s: want a JSON object of SLACK_* keys", c.SecretsARN)
	}
	for _, k := range secretKeys {
		v, ok := m[k]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("TOKKEN_SECRETS_ARN: secret %s: %s: want a string", c.SecretsARN, k)
		}
		switch k {
		case "SLACK_SIGNING_SECRET":
			if c.SlackSigningSecret == "" {
				c.SlackSigningSecret = Secret(s)
			}
		case "SLACK_BOT_TOKEN":
			if c.SlackBotToken == "" {
				c.SlackBotToken = Secret(s)
			}
		case "SLACK_APP_TOKEN":
			if c.SlackAppToken == "" {
				c.SlackAppToken = Secret(s)
			}
		}
	}
	if errs := c.checkSecrets(); len(errs) > 0 {
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
