package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tokken/tokken/infra/config"
)

// runLambda serves Lambda invocations through the dispatcher, flushing the
// EMF metrics to stdout after each one. Configuration errors end the
// process before the first invocation (Lambda reports an init error with
// the message), except a Slack secret that still holds the template's
// placeholder: the function then waits for it (unconfigured.go).
// lambda.Start does not return.
func runLambda(ctx context.Context, e env) int {
	a, code := startApp(ctx, e, e.stdout, func(cfg config.Config, log *slog.Logger, err error) {
		// Right after the first deploy: wait for the secret, not fail.
		lambda.StartWithOptions(newUnconfigured(cfg, log, e.stdout, err).invoke, lambda.WithContext(ctx))
	})
	if a == nil {
		return code
	}
	a.log.Info("tokken lambda ready", "version", a.info.String(), "config", a.cfg)
	lambda.StartWithOptions(a.invokeLambda, lambda.WithContext(ctx))
	return exitOK
}
