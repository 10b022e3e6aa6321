#!/usr/bin/env bash
# test.sh is tokken's one test command (README, .ci/run): it installs what the
# tests need (a JRE and DynamoDB Local, via scripts/install-test-deps.sh),
# then vets and tests every package with the race detector. Extra arguments
# are passed to `go test` (e.g. ./scripts/test.sh -run TestSignedAccessHelp).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

command -v go >/dev/null 2>&1 || { echo "test.sh: Go is not installed (see go.mod for the version)" >&2; exit 1; }

./scripts/install-test-deps.sh
# The DynamoDB contract run must never be skipped by the test command.
export TOKKEN_REQUIRE_DYNAMODB_LOCAL=1

unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*'))"
if [ -n "$unformatted" ]; then
	echo "test.sh: gofmt needed on:" >&2
	echo "$unformatted" >&2
	exit 1
fi

go vet ./...
# Code nothing reaches, tests included, is deleted, not kept (CONTRIBUTING.md).
unreached="$(go run golang.org/x/tools/cmd/deadcode@v0.52.0 -test ./...)"
if [ -n "$unreached" ]; then
	echo "test.sh: code nothing reaches (delete it, or use it where it was meant to be used):" >&2
	echo "$unreached" >&2
	exit 1
fi
# The Lambda ingress build (link_ingress.go) must keep building too.
go vet -tags lambda.norpc,ingress . ./infra/awsconfig/
go test -race -count=1 "$@" ./...
# infra/awsconfig has a loader of its own in the Lambda ingress build
# (load_lambda.go): its tests run only with the tag.
go test -race -count=1 -tags ingress "$@" ./infra/awsconfig/
# The benchmark harness is its own module (bench/go.mod): not tested here,
# but it must keep building against the product.
(cd bench && go build ./... && go vet ./...)

# A short fuzz run of every parser of outside input (crashers become seeds).
./scripts/fuzz.sh
