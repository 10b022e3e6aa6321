package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

// runLambda serves Lambda invocations through the dispatcher, flushing the
// EMF metrics to stdout after each one. Configuration errors end the
// process before the first invocation (Lambda reports an init error with
// the message). lambda.Start does not return.
func runLambda(ctx context.Context, e env) int {
	cfg, code := loadConfig(e)
	if code != exitOK {
		return code
	}
	log := newLogger(cfg, e.stderr)
	a, err := buildApp(ctx, cfg, log, metricsTo(e.stdout))
	if err != nil {
		return startupError(e, err)
	}
	a.start()
	log.Info("tokken lambda ready", "version", a.info.String(), "config", cfg)
	lambda.StartWithOptions(a.invokeLambda, lambda.WithContext(ctx))
	return exitOK
}
