# Build targets. `sam build` calls build-IngressFunction / build-WorkerFunction
# with ARTIFACTS_DIR set; `make bootstrap` builds the same artifact without SAM.
GOFLAGS_LAMBDA := -trimpath -tags lambda.norpc -ldflags "-s -w"
ARTIFACTS_DIR ?= .aws-sam/manual

.PHONY: bootstrap build-IngressFunction build-WorkerFunction test bench

bootstrap:
	mkdir -p $(ARTIFACTS_DIR)/policies
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build $(GOFLAGS_LAMBDA) -o $(ARTIFACTS_DIR)/bootstrap .
	cp policies/*.yaml policies/*.cedar $(ARTIFACTS_DIR)/policies/

build-IngressFunction build-WorkerFunction: bootstrap

test:
	./scripts/test.sh

# The benchmarks of BENCHMARKS.md (the harness is its own module, bench/go.mod).
bench:
	./bench/run.sh
