# Build targets. `sam build` calls build-IngressFunction / build-WorkerFunction
# with ARTIFACTS_DIR set: each writes that function's bootstrap and the
# policies/ directory next to it. The worker runs the full build; the ingress
# runs the ingress build (-tags ingress, link_ingress.go), which links only
# what the Lambda ingress runs, for a shorter cold start. `make bootstrap`
# builds both without SAM, in $(ARTIFACTS_DIR)/ingress and $(ARTIFACTS_DIR)/worker.
# LAMBDA_ARCH is template.yaml's architecture; tests and benchmarks build the
# same artifacts for the machine they run on.
LAMBDA_ARCH ?= arm64
ARTIFACTS_DIR ?= .aws-sam/manual
WORKER_TAGS := lambda.norpc
INGRESS_TAGS := lambda.norpc,ingress

# lambda-artifact builds one function's artifact into $(ARTIFACTS_DIR) with the build tags $(1).
define lambda-artifact
	mkdir -p $(ARTIFACTS_DIR)/policies
	GOOS=linux GOARCH=$(LAMBDA_ARCH) CGO_ENABLED=0 go build -trimpath -tags $(1) -ldflags "-s -w" -o $(ARTIFACTS_DIR)/bootstrap .
	cp policies/*.yaml policies/*.cedar $(ARTIFACTS_DIR)/policies/
endef

.PHONY: bootstrap build-IngressFunction build-WorkerFunction test bench

bootstrap:
	$(MAKE) --no-print-directory build-IngressFunction ARTIFACTS_DIR=$(ARTIFACTS_DIR)/ingress
	$(MAKE) --no-print-directory build-WorkerFunction ARTIFACTS_DIR=$(ARTIFACTS_DIR)/worker

build-IngressFunction:
	$(call lambda-artifact,$(INGRESS_TAGS))

build-WorkerFunction:
	$(call lambda-artifact,$(WORKER_TAGS))

test:
	./scripts/test.sh

# The benchmarks of BENCHMARKS.md (the harness is its own module, bench/go.mod).
bench:
	./bench/run.sh
