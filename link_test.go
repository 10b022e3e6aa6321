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

// linkedPackages lists the packages the build of this package with tags
// links.
func linkedPackages(t *testing.T, tags string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-tags", tags, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps -tags %s: %v\n%s", tags, err, out)
	}
	return strings.Fields(string(out))
}

// sdkServices picks the AWS SDK services out of pkgs, sorted.
func sdkServices(pkgs []string) []string {
	var services []string
	for _, pkg := range pkgs {
		if m := sdkService.FindStringSubmatch(pkg); m != nil {
			services = append(services, m[1])
		}
	}
	slices.Sort(services)
	return services
}

// ingressLeavesOut are packages the ingress build must not link, and why.
var ingressLeavesOut = map[string]string{
	// The SDK's default configuration: its credential chain links the
	// STS, SSO, SSO OIDC and Sign-In clients and IMDS (infra/awsconfig
	// reads the environment instead in this build).
	"github.com/aws/aws-sdk-go-v2/config": "the SDK's credential chain",
	// The embedded store is a local tokken's (link_full.go's openBolt):
	// on Lambda the store is DynamoDB.
	"go.etcd.io/bbolt": "the embedded store",
}

// TestIngressBuildLinks: the Lambda ingress build (the Makefile's
// build-IngressFunction: -tags lambda.norpc,ingress) compiles, and links
// the AWS SDK services the ingress calls (DynamoDB, SQS, Secrets Manager)
// and no other, nor the packages of ingressLeavesOut (the SDK's config
// package, bbolt): every SDK service linked runs its package initialisers
// in each cold start, and the ingress's Slack answers wait for them. The
// credentials come from the environment (infra/awsconfig's ingress
// loader), not the SDK's credential chain, which would bring STS, SSO, SSO
// OIDC and Sign-In. A client only the worker calls, or a part only a local
// tokken uses, belongs in link_full.go. The full build (the worker's)
// links the worker's services.
func TestIngressBuildLinks(t *testing.T) {
	// It compiles: link_ingress.go's stand-ins keep up with the ports.
	if out, err := exec.Command("go", "vet", "-tags", "lambda.norpc,ingress", ".").CombinedOutput(); err != nil {
		t.Fatalf("go vet -tags lambda.norpc,ingress: %v\n%s", err, out)
	}
	ingress := linkedPackages(t, "lambda.norpc,ingress")
	want := []string{"dynamodb", "secretsmanager", "sqs"}
	if got := sdkServices(ingress); !slices.Equal(got, want) {
		t.Errorf("the ingress build links the SDK services %v, want %v (a worker-only client belongs in link_full.go)", got, want)
	}
	for pkg, what := range ingressLeavesOut {
		if slices.Contains(ingress, pkg) {
			t.Errorf("the ingress build links %s (%s)", pkg, what)
		}
	}
	full := sdkServices(linkedPackages(t, "lambda.norpc"))
	for _, s := range []string{"codepipeline", "ec2", "ecs", "iam", "scheduler", "ssm"} {
		if !slices.Contains(full, s) {
			t.Errorf("the full build does not link %s: %v", s, full)
		}
	}
}
