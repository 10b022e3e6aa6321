// Command minimal is the least a Go Lambda function behind a Function URL
// can be: aws-lambda-go's runtime loop and a handler answering 200. The
// cold-start benchmark (bench/cmd/lambdabench) builds it with the same flags
// as tokken's bootstrap and starts it beside tokken's ingress, so tokken's
// start-up is read against what any Go function pays on this machine.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		return events.LambdaFunctionURLResponse{StatusCode: 200, Body: "ok"}, nil
	})
}
