// Command awsfloor is the least a Slack ingress on Lambda does with the
// environment template.yaml gives tokken's: at init it reads the Slack
// signing secret from Secrets Manager (TOKKEN_SECRETS_ARN); for a signed
// slash command it verifies the signature (tokken's handlers/slacksig),
// parses the command with slack-go (slack.SlashCommandParse), records the
// delivery in DynamoDB (tokken's dynamostore, a create-only record, so a
// replay runs once) and answers with the text tokken answers `/access
// help` with. It loads no policy, decides nothing, asks Slack nothing,
// logs nothing and links no other AWS client: a floor, not a Slack app.
//
// The cold-start benchmark (bench/cmd/lambdabench) builds it like tokken's
// bootstrap (-tags lambda.norpc,ingress: the SDK configuration from the
// environment, as tokken's ingress build reads it) and starts it beside
// tokken and the minimal function, so what tokken's cold start costs above
// what the template's environment requires reads directly.
//
// Environment: what lambdabench gives tokken's ingress (AWS_REGION, the
// credentials, AWS_ENDPOINT_URL_<SERVICE>, TOKKEN_SECRETS_ARN,
// TOKKEN_STORE=dynamodb:<table>).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/infra/awsconfig"
	"github.com/tokken/tokken/infra/dynamostore"
)

func main() {
	ctx := context.Background()
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		log.Fatalf("awsfloor: %v", err)
	}
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(os.Getenv("TOKKEN_SECRETS_ARN"))})
	if err != nil {
		log.Fatalf("awsfloor: secret: %v", err)
	}
	var secret struct {
		SigningSecret string `json:"SLACK_SIGNING_SECRET"`
	}
	if out.SecretString == nil || json.Unmarshal([]byte(*out.SecretString), &secret) != nil || secret.SigningSecret == "" {
		log.Fatal("awsfloor: the secret holds no SLACK_SIGNING_SECRET")
	}
	table, ok := strings.CutPrefix(os.Getenv("TOKKEN_STORE"), "dynamodb:")
	if !ok {
		log.Fatal("awsfloor: TOKKEN_STORE=dynamodb:<table> is required")
	}
	f := floor{
		verifier: slacksig.Verifier{Secret: []byte(secret.SigningSecret)},
		store:    dynamostore.New(dynamodb.NewFromConfig(cfg), table),
		help:     mrkdwn.Escape(access.Help),
	}
	lambda.Start(f.handle)
}

type floor struct {
	verifier slacksig.Verifier
	store    *dynamostore.Store
	help     string
}

func (f floor) handle(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return answer(http.StatusBadRequest, err.Error()), nil
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/slack/commands", strings.NewReader(string(body)))
	if err != nil {
		return answer(http.StatusBadRequest, err.Error()), nil
	}
	for k, v := range ev.Headers {
		req.Header.Set(k, v)
	}
	if err := f.verifier.Verify(req.Header, body); err != nil {
		return answer(http.StatusUnauthorized, err.Error()), nil
	}
	cmd, err := slack.SlashCommandParse(req)
	if err != nil {
		return answer(http.StatusBadRequest, err.Error()), nil
	}
	_, err = f.store.Put(ctx, bot.Record{Kind: "seen", Key: "cmd:" + cmd.TriggerID, Data: []byte(`{}`), ExpiresAt: time.Now().Add(time.Hour)})
	if errors.Is(err, bot.ErrConflict) {
		return answer(http.StatusOK, "repeated"), nil
	}
	if err != nil {
		return events.LambdaFunctionURLResponse{}, fmt.Errorf("record delivery: %w", err)
	}
	msg, err := json.Marshal(slack.Msg{ResponseType: slack.ResponseTypeEphemeral, Text: f.help})
	if err != nil {
		return events.LambdaFunctionURLResponse{}, err
	}
	return events.LambdaFunctionURLResponse{StatusCode: http.StatusOK, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(msg)}, nil
}

func answer(status int, text string) events.LambdaFunctionURLResponse {
	return events.LambdaFunctionURLResponse{StatusCode: status, Body: text}
}
