package main

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// sdkService is an AWS SDK service client package.
var sdkService = regexp.MustCompile(`^github\.com/aws/aws-sdk-go-v2/service/([a-z0-9]+)$`)

// linkedServices lists the AWS SDK services the build of this package with
// tags links, sorted.
func linkedServices(t *testing.T, tags string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-tags", tags, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps -tags %s: %v\n%s", tags, err, out)
	}
	var services []string
	for _, pkg := range strings.Fields(string(out)) {
		if m := sdkService.FindStringSubmatch(pkg); m != nil {
			services = append(services, m[1])
		}
	}
	slices.Sort(services)
	return services
}

// TestIngressBuildLinks: the Lambda ingress build (the Makefile's
// build-IngressFunction: -tags lambda.norpc,ingress) compiles, and links the AWS SDK
// services the ingress calls (DynamoDB, SQS, Secrets Manager) and those
// the SDK's credential chain brings (STS, SSO, SSO OIDC, Sign-In), and no
// other: every service linked runs its package initialisers in each cold
// start, and the ingress's Slack answers wait for them. A client only the
// worker calls belongs in link_full.go. The full build (the worker's)
// links the worker's services.
func TestIngressBuildLinks(t *testing.T) {
	// It compiles: link_ingress.go's stand-ins keep up with the ports.
	if out, err := exec.Command("go", "vet", "-tags", "lambda.norpc,ingress", ".").CombinedOutput(); err != nil {
		t.Fatalf("go vet -tags lambda.norpc,ingress: %v\n%s", err, out)
	}
	want := []string{"dynamodb", "secretsmanager", "signin", "sqs", "sso", "ssooidc", "sts"}
	if got := linkedServices(t, "lambda.norpc,ingress"); !slices.Equal(got, want) {
		t.Errorf("the ingress build links the SDK services %v, want %v (a worker-only client belongs in link_full.go)", got, want)
	}
	full := linkedServices(t, "lambda.norpc")
	for _, s := range []string{"codepipeline", "ec2", "ecs", "iam", "scheduler", "ssm"} {
		if !slices.Contains(full, s) {
			t.Errorf("the full build does not link %s: %v", s, full)
		}
	}
}
