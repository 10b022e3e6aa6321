#!/usr/bin/env bash
# bench/run.sh — build everything and run tokken's benchmarks in one go, with
# modest bounded loads (a few minutes on 2 cores). Prints a Markdown report
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
bin="$out/bin"
mkdir -p "$bin"
report="$out/report.md"

step() { printf 'bench: %s\n' "$*" >&2; }

step "building tokken, the floor, the harness and the Lambda bootstraps"
go build -o "$bin/tokken" .
go build -o "$bin/floor" ./bench/cmd/floor
go build -o "$bin/ackbench" ./bench/cmd/ackbench
go build -o "$bin/coldstart" ./bench/cmd/coldstart
go build -o "$bin/flowbench" ./bench/cmd/flowbench
go build -o "$bin/socketbench" ./bench/cmd/socketbench
arch=$(go env GOHOSTARCH)
# The Lambda build, for this machine so it can run here: same flags as the
# Makefile's bootstrap target.
GOOS=linux GOARCH="$arch" CGO_ENABLED=0 go build -trimpath -tags lambda.norpc -ldflags "-s -w" -o "$bin/bootstrap-$arch" .
# The artifact SAM deploys (arm64), for its size.
make --no-print-directory bootstrap ARTIFACTS_DIR="$out/sam" >&2

if [ -z "${DYNAMODB_LOCAL_DIR:-}" ] && [ ! -f .tools/dynamodb-local/DynamoDBLocal.jar ]; then
  step "installing DynamoDB Local (the Lambda store of the cold-start proxy)"
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
  echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r), $(go version | cut -d' ' -f3), node $(node --version), @slack/bolt $(node -p "require('./bench/bolt/node_modules/@slack/bolt/package.json').version")"
  echo
  echo "### Ack latency and CPU per ack"
  echo
} >"$report"

step "ack benchmark: floor, tokken serve, Bolt, three rounds (about 6 minutes)"
"$bin/ackbench" -tokken "$bin/tokken" -floor "$bin/floor" -bolt bench/bolt -policies policies -n 20000 -rounds 3 -out "$out" >>"$report"

step "Socket Mode acks, HTTP side by side in the same process (about 30 s)"
printf '\n### Socket Mode acks\n\n' >>"$report"
"$bin/socketbench" -tokken "$bin/tokken" -policies policies -n 2000 -paced 1000 -warmup 300 -out "$out" >>"$report"

step "Lambda cold-start proxy"
{
  echo
  echo "### Lambda cold start"
  echo
} >>"$report"
"$bin/coldstart" -bootstrap "$bin/bootstrap-$arch" -arm64 "$out/sam/bootstrap" -policies policies -out "$out" >>"$report"

step "end-to-end flows: approve click -> credentials DM, and an alert storm (about 2 minutes)"
{
  echo
  echo "### End-to-end flows"
  echo
} >>"$report"
"$bin/flowbench" -tokken "$bin/tokken" -policies policies -testdata handlers/alertui/testdata -out "$out" >>"$report"

step "micro-benchmarks"
{
  echo
  echo "### Micro-benchmarks"
  echo
  echo "\`go test -run '^\$' -bench . -benchmem\` on each package:"
  echo
  echo '```'
} >>"$report"
for pkg in ./policies ./infra/boltstore ./infra/metrics; do
  if ! go test -run '^$' -bench . -benchmem -count=1 "$pkg" 2>&1 | grep -E '^(Benchmark|pkg:|FAIL|ok )' >>"$report"; then
    echo "$pkg: no benchmark output (see: go test -run '^\$' -bench . $pkg)" >>"$report"
  fi
done
echo '```' >>"$report"

cat "$report"
step "report kept in $report"
