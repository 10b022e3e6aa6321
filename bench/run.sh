#!/usr/bin/env bash
# bench/run.sh — build everything and run tokken's benchmarks in one go, with
# modest bounded loads (a few minutes on 2 cores). The harness is its own
# Go module (bench/go.mod), outside the product's `go test ./...`. Prints a Markdown report
# on stdout and keeps it, the JSON results and every server's log in
# $BENCH_OUT (default bench/out, git-ignored). See BENCHMARKS.md for what
# the numbers mean.
#
#   ./bench/run.sh
#
# Needs: Go, node + npm (the @slack/bolt peer, installed with `npm ci` from
# bench/bolt/package-lock.json), make. Nothing reaches the internet or AWS:
# Slack is testkit/slackfake on loopback, AWS endpoints are closed ports.
set -euo pipefail

cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench/out}
mkdir -p "$out/bin"
bin=$(cd "$out/bin" && pwd)
report="$out/report.md"

step() { printf 'bench: %s\n' "$*" >&2; }

step "building tokken, the harness and the Lambda bootstraps"
go build -o "$bin/tokken" .
for cmd in ackbench lambdabench flowbench slackgo; do
  go -C bench build -o "$bin/$cmd" "./cmd/$cmd"
done
arch=$(go env GOHOSTARCH)
# The IngressFunction's artifact as SAM builds it (the Makefile's
# build-IngressFunction: the ingress build), for this machine so it can run
# here, and for arm64 (what SAM deploys), for its size.
make --no-print-directory build-IngressFunction LAMBDA_ARCH="$arch" ARTIFACTS_DIR="$out/ingress-$arch" >&2
make --no-print-directory build-IngressFunction ARTIFACTS_DIR="$out/sam" >&2
# The minimal aws-lambda-go function the cold start is read against, and
# the floor of an ingress with the template's environment, built with the
# same flags (the floor with the ingress build's AWS configuration).
GOOS=linux GOARCH="$arch" CGO_ENABLED=0 go -C bench build -trimpath -tags lambda.norpc -ldflags "-s -w" -o "$bin/minimal-$arch" ./cmd/minimal
GOOS=linux GOARCH="$arch" CGO_ENABLED=0 go -C bench build -trimpath -tags lambda.norpc,ingress -ldflags "-s -w" -o "$bin/awsfloor-$arch" ./cmd/awsfloor

if [ -z "${DYNAMODB_LOCAL_DIR:-}" ] && [ ! -f .tools/dynamodb-local/DynamoDBLocal.jar ]; then
  step "installing DynamoDB Local (the Lambda store)"
  ./scripts/install-test-deps.sh >&2
fi

step "installing the Bolt peer (npm ci)"
(cd bench/bolt && npm ci --no-audit --no-fund --loglevel=error >&2)

# The commit measured; BENCH_COMMIT names it when the tree is an export
# (git archive) without .git.
commit=${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
if [ -z "${BENCH_COMMIT:-}" ] && ! git diff --quiet HEAD 2>/dev/null; then
  commit="$commit (with uncommitted changes in the tree)"
fi

{
  echo "## Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- command: \`./bench/run.sh\` at commit $commit"
  echo "- machine: $(nproc) CPUs, shared (load average $(cut -d" " -f1-3 /proc/loadavg) at the start) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r), $(go version | cut -d' ' -f3), node $(node --version), @slack/bolt $(node -p "require('./bench/bolt/node_modules/@slack/bolt/package.json').version")"
  echo
} >"$report"

step "Lambda ingress: cold start beside a minimal function and the floor, warm requests (about 2 minutes)"
{
  echo
  echo "### Lambda ingress"
  echo
} >>"$report"
"$bin/lambdabench" -tokken "$out/ingress-$arch/bootstrap" -minimal "$bin/minimal-$arch" -floor "$bin/awsfloor-$arch" -arm64 "$out/sam/bootstrap" -policies policies -out "$out" >>"$report"

step "end-to-end flows: approve click -> credentials DM, and an alert storm (about 2 minutes)"
{
  echo
  echo "### End-to-end flows"
  echo
} >>"$report"
"$bin/flowbench" -tokken "$bin/tokken" -policies policies -testdata handlers/alertui/testdata -out "$out" >>"$report"

step "ack benchmark: tokken serve beside the slack-go floor and Bolt (about 4 minutes)"
{
  echo
  echo "### tokken serve beside the slack-go floor and Bolt"
  echo
} >>"$report"
"$bin/ackbench" -tokken "$bin/tokken" -slackgo "$bin/slackgo" -peers tokken,slack-go,bolt -bolt bench/bolt -policies policies -n 20000 -out "$out" >>"$report"

cat "$report"
step "report kept in $report"
