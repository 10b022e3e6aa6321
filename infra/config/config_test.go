package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var minimal = map[string]string{
	"SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
	"SLACK_BOT_TOKEN":      "xoxb-1-2-abc",
}

func with(extra map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range minimal {
		m[k] = v
	}
	for k, v := range extra {
		if v == "" {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	return m
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(minimal), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Role != RoleAll || c.Addr != DefaultAddr || c.Store != (StoreSpec{Kind: StoreBolt, Path: "tokken.db"}) ||
		c.PolicyDir != DefaultPolicyDir || c.FederationURL != DefaultFederationURL ||
		c.Location.String() != "Asia/Tokyo" || c.LogLevel != slog.LevelInfo || c.Lambda || c.SocketMode() {
		t.Errorf("defaults: %+v", c)
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"bad store", with(map[string]string{"TOKKEN_STORE": "mysql:x"}),
			[]string{`TOKKEN_STORE: want "bolt:<path>" or "dynamodb:<table>", got "mysql:x"`}},
		{"empty bolt path", with(map[string]string{"TOKKEN_STORE": "bolt:"}), []string{"TOKKEN_STORE: want"}},
		{"bad table name", with(map[string]string{"TOKKEN_STORE": "dynamodb:a b"}), []string{"TOKKEN_STORE: want"}},
		{"bad role", with(map[string]string{"TOKKEN_ROLE": "both"}), []string{`TOKKEN_ROLE: want "all", "ingress" or "worker", got "both"`}},
		{"bad tz", with(map[string]string{"TOKKEN_TIMEZONE": "Mars/Olympus"}), []string{"TOKKEN_TIMEZONE: want an IANA time zone"}},
		{"bad level", with(map[string]string{"TOKKEN_LOG_LEVEL": "loud"}), []string{"TOKKEN_LOG_LEVEL: want"}},
		{"bad slack url", with(map[string]string{"SLACK_API_URL": "slack.com/api"}), []string{"SLACK_API_URL: want an http(s) URL"}},
		{"http federation", with(map[string]string{"TOKKEN_FEDERATION_URL": "http://signin"}), []string{"TOKKEN_FEDERATION_URL: want an https URL"}},
		{"http federation to a look-alike host", with(map[string]string{"TOKKEN_FEDERATION_URL": "http://127.0.0.1.evil.example/federation"}), []string{"TOKKEN_FEDERATION_URL: want an https URL"}},
		{"missing signing secret", with(map[string]string{"SLACK_SIGNING_SECRET": ""}), []string{"SLACK_SIGNING_SECRET: want"}},
		{"missing bot token", with(map[string]string{"SLACK_BOT_TOKEN": ""}), []string{"SLACK_BOT_TOKEN: want"}},
		{"user token as bot token", with(map[string]string{"SLACK_BOT_TOKEN": "xoxp-123456"}), []string{`SLACK_BOT_TOKEN: want a bot token starting with "xoxb-" (OAuth & Permissions → Bot User OAuth Token), got "xoxp…"`}},
		{"bot token as app token", with(map[string]string{"SLACK_APP_TOKEN": "xoxb-1"}), []string{`SLACK_APP_TOKEN: want an app-level token`}},
		{"placeholder bot token from .env.example", with(map[string]string{"SLACK_BOT_TOKEN": "xoxb-"}),
			[]string{`SLACK_BOT_TOKEN: want the whole bot token: "xoxb-" followed by the rest of it`, "only the prefix: the placeholder from .env.example"}},
		{"placeholder bot token from the docs", with(map[string]string{"SLACK_BOT_TOKEN": "xoxb-…"}), []string{`SLACK_BOT_TOKEN: want the whole bot token`}},
		{"placeholder app token", with(map[string]string{"SLACK_APP_TOKEN": "xapp-"}), []string{`SLACK_APP_TOKEN: want the whole app-level token`}},
		{"three-character signing secret", with(map[string]string{"SLACK_SIGNING_SECRET": "abc"}),
			[]string{"SLACK_SIGNING_SECRET: want the whole signing secret", "at least 20"}},
		{"bolt on lambda", with(map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "TOKKEN_ROLE": "ingress"}),
			[]string{"TOKKEN_STORE: want \"dynamodb:<table>\" on Lambda", "TOKKEN_QUEUE_URL: want the SQS job queue URL on Lambda"}},
		{"worker on lambda needs scheduler", with(map[string]string{"AWS_LAMBDA_RUNTIME_API": "x", "TOKKEN_ROLE": "worker",
			"TOKKEN_STORE": "dynamodb:tokken", "TOKKEN_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q"}),
			[]string{"TOKKEN_QUEUE_ARN: want", "TOKKEN_SCHEDULER_GROUP: want", "TOKKEN_SCHEDULER_ROLE_ARN: want", "TOKKEN_PROTECTED_ARNS: want"}},
		{"boundary not a policy", with(map[string]string{"TOKKEN_GRANT_BOUNDARY_ARN": "arn:aws:iam::210987654321:role/tokken-grant-boundary"}),
			[]string{"TOKKEN_GRANT_BOUNDARY_ARN: want a managed policy ARN"}},
		{"protected not an arn", with(map[string]string{"TOKKEN_PROTECTED_ARNS": "arn:aws:sqs:us-east-1:123456789012:q, tokken-table"}),
			[]string{`TOKKEN_PROTECTED_ARNS: want comma-separated ARNs (arn:aws:…), got "tokken-table"`}},
		{"not an arn", with(map[string]string{"TOKKEN_SECRETS_ARN": "tokken-secret"}), []string{"TOKKEN_SECRETS_ARN: want an ARN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(tt.env), "")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v is not a *FieldError", err)
			}
			for _, s := range []string{"8f742231b10e8888abcd99yyyzzz85a5", "xoxb-1-2-abc", "123456", "abc"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error leaks a secret: %q", err)
				}
			}
		})
	}
}

func TestLoadRoleRequirements(t *testing.T) {
	// An ingress needs no bot token; a worker needs no signing secret.
	if _, err := Load(env(map[string]string{"TOKKEN_ROLE": "ingress", "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5"}), ""); err != nil {
		t.Errorf("ingress without bot token: %v", err)
	}
	if _, err := Load(env(map[string]string{"TOKKEN_ROLE": "worker", "SLACK_BOT_TOKEN": "xoxb-1-2-x"}), ""); err != nil {
		t.Errorf("worker without signing secret: %v", err)
	}
	lambda := with(map[string]string{
		"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "TOKKEN_STORE": "dynamodb:tokken",
		"TOKKEN_QUEUE_URL": "https://sqs.ap-northeast-1.amazonaws.com/123456789012/tokken", "TOKKEN_QUEUE_ARN": "arn:aws:sqs:ap-northeast-1:123456789012:tokken",
		"TOKKEN_SCHEDULER_GROUP": "tokken-timers", "TOKKEN_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/sched",
		"TOKKEN_PROTECTED_ARNS":     " arn:aws:dynamodb:ap-northeast-1:123456789012:table/tokken,arn:aws:dynamodb:ap-northeast-1:123456789012:table/tokken/*,",
		"TOKKEN_GRANT_BOUNDARY_ARN": "arn:aws:iam::123456789012:policy/tokken-grant-boundary",
		"AWS_LAMBDA_FUNCTION_NAME":  "tokken-WorkerFunction-AbC",
	})
	c, err := Load(env(lambda), "")
	if err != nil {
		t.Fatalf("lambda: %v", err)
	}
	if !c.Lambda || c.Store.Table != "tokken" || c.LambdaFunction != "tokken-WorkerFunction-AbC" ||
		c.Access.GrantBoundaryARN != "arn:aws:iam::123456789012:policy/tokken-grant-boundary" ||
		strings.Join(c.Access.ProtectedARNs, " ") != "arn:aws:dynamodb:ap-northeast-1:123456789012:table/tokken arn:aws:dynamodb:ap-northeast-1:123456789012:table/tokken/*" {
		t.Errorf("lambda config: %+v", c)
	}
}

func TestDotenvAndPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	data := "# tokken\nexport SLACK_SIGNING_SECRET='from file 0123456789abcdef'\nSLACK_BOT_TOKEN=\"xoxb-file\"\nTOKKEN_ADDR=127.0.0.1:9999 # inline comment\n\nTOKKEN_ROLE=ingress\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"TOKKEN_ROLE": "all"}), path)
	if err != nil {
		t.Fatal(err)
	}
	if c.SlackSigningSecret.Reveal() != "from file 0123456789abcdef" || c.SlackBotToken.Reveal() != "xoxb-file" || c.Addr != "127.0.0.1:9999" {
		t.Errorf("values from .env not read: %+v", c)
	}
	if c.Role != RoleAll {
		t.Errorf("environment must win over .env: role %q", c.Role)
	}
	if _, err := Load(env(minimal), filepath.Join(dir, "missing.env")); err != nil {
		t.Errorf("a missing .env must be fine: %v", err)
	}
}

func TestParseDotenv(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"A=1\nB = two words \n", map[string]string{"A": "1", "B": "two words"}, ""},
		{`A="x\ny\"z"`, map[string]string{"A": "x\ny\"z"}, ""},
		{`A='a\nb # c'`, map[string]string{"A": `a\nb # c`}, ""},
		{"A=x#y", map[string]string{"A": "x#y"}, ""},
		{"A=\r\nB=2\r\n", map[string]string{"A": "", "B": "2"}, ""},
		{"A\n", nil, "line 1"},
		{"\n1A=x", nil, "line 2"},
		{`A="open`, nil, "line 1 (A): unterminated double quote"},
		{`A='open`, nil, "unterminated single quote"},
		{`A="x" y`, nil, "unexpected text after closing quote"},
	}
	for _, tt := range tests {
		got, err := ParseDotenv([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDotenv(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDotenv(%q): %v", tt.in, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("ParseDotenv(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseDotenv(f *testing.F) {
	for _, s := range []string{"A=1", `A="x\"y"`, "A='b'", "export A=b # c", "=", `A="`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseDotenv([]byte(s)) // must not panic
	})
}

func TestSecretsAreRedacted(t *testing.T) {
	c, err := Load(env(with(map[string]string{"SLACK_APP_TOKEN": "xapp-very-secret"})), "")
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s", c, c, c, c.SlackBotToken)
	if b, err := json.Marshal(c); err == nil {
		out += string(b)
	}
	for _, s := range []string{"s3cr3t-signing", "xoxb-1-2-abc", "xapp-very-secret"} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q printed: %s", s, out)
		}
	}
	if !strings.Contains(buf.String(), `"slack_bot_token":"(set)"`) {
		t.Errorf("log line does not say the token is set: %s", buf.String())
	}
}

// fakeSecretsManager speaks the Secrets Manager JSON 1.1 protocol for
// GetSecretValue, so the real SDK client's serialisation is exercised.
func fakeSecretsManager(t *testing.T, secrets map[string]string) *secretsmanager.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("X-Amz-Target"); got != "secretsmanager.GetSecretValue" {
			http.Error(w, "unexpected target "+got, http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var in struct{ SecretId string }
		if err := json.Unmarshal(body, &in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		s, ok := secrets[in.SecretId]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"__type":"ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"ARN": in.SecretId, "Name": "tokken", "SecretString": s})
	}))
	t.Cleanup(srv.Close)
	return secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
}

func TestResolveSecrets(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tokken-AbCdEf"
	sm := fakeSecretsManager(t, map[string]string{
		arn:          `{"SLACK_SIGNING_SECRET":"from-secrets-manager-0123","SLACK_BOT_TOKEN":"xoxb-1-2-sm","OTHER":1}`,
		arn + "bad":  `not json s3cr3t`,
		arn + "num":  `{"SLACK_BOT_TOKEN":42}`,
		arn + "user": `{"SLACK_SIGNING_SECRET":"x","SLACK_BOT_TOKEN":"xoxp-user"}`,
		arn + "new":  `{"SLACK_SIGNING_SECRET":"set-me","SLACK_BOT_TOKEN":"set-me"}`,
	})
	tests := []struct {
		name, arn string
		env       map[string]string
		wantErr   string
		wantBot   string
	}{
		{"fills from secret", arn, nil, "", "xoxb-1-2-sm"},
		{"environment wins", arn, map[string]string{"SLACK_BOT_TOKEN": "xoxb-1-2-env"}, "", "xoxb-1-2-env"},
		{"not json", arn + "bad", nil, "want a JSON object", ""},
		{"not a string", arn + "num", nil, "SLACK_BOT_TOKEN: want a string", ""},
		{"wrong token kind", arn + "user", nil, `SLACK_BOT_TOKEN: want a bot token starting with "xoxb-"`, ""},
		{"missing secret", arn + "gone", nil, "ResourceNotFoundException", ""},
		{"placeholder as created", arn + "new", nil, "the Slack secret is not filled in yet: SLACK_SIGNING_SECRET in secret " + arn + "new is still \"set-me\"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{"TOKKEN_SECRETS_ARN": tt.arn}
			for k, v := range tt.env {
				m[k] = v
			}
			c, err := Load(env(m), "")
			if err != nil {
				t.Fatalf("Load must defer secret checks when TOKKEN_SECRETS_ARN is set: %v", err)
			}
			err = c.ResolveSecrets(context.Background(), SecretsManager(sm))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("error leaks secret text: %v", err)
				}
				if placeholder := strings.Contains(tt.arn, "new"); errors.Is(err, ErrSecretNotFilledIn) != placeholder {
					t.Errorf("errors.Is(%v, ErrSecretNotFilledIn) = %v, want %v", err, !placeholder, placeholder)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.SlackBotToken.Reveal() != tt.wantBot || c.SlackSigningSecret.Reveal() != "from-secrets-manager-0123" {
				t.Errorf("got bot %q signing %q", c.SlackBotToken.Reveal(), c.SlackSigningSecret.Reveal())
			}
		})
	}
}

func TestFederationURLOverHTTPOnlyToLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:4566/federation", "http://localhost:8080/federation", "http://[::1]:9/federation"} {
		cfg, err := Load(env(with(map[string]string{"TOKKEN_FEDERATION_URL": u})), "")
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		if cfg.FederationURL != u {
			t.Errorf("FederationURL = %q, want %q", cfg.FederationURL, u)
		}
	}
}

func TestIsPolicyARN(t *testing.T) {
	for s, want := range map[string]bool{
		"arn:aws:iam::210987654321:policy/tokken-grant-boundary":    true,
		"arn:aws-us-gov:iam::210987654321:policy/org/grant-ceiling": true,
		"arn:aws:iam::aws:policy/ReadOnlyAccess":                    true,
		"arn:aws:iam::210987654321:role/tokken-grant-boundary":      false,
		"arn:aws:iam::21098765432:policy/p":                         false,
		"arn:aws:iam::210987654321:policy/":                         false,
		"arn:aws:iam::210987654321:policy/p*":                       false,
		"arn:aws:sqs::210987654321:policy/p":                        false,
		"tokken-grant-boundary":                                     false,
	} {
		if got := isPolicyARN(s); got != want {
			t.Errorf("isPolicyARN(%q) = %v, want %v", s, got, want)
		}
	}
}
