#!/usr/bin/env bash
# install-test-deps.sh installs what tokken's tests need beyond Go itself:
#   - a Java runtime (DynamoDB Local is a Java program), via apt-get, only if
#     `java` is not on PATH;
#   - DynamoDB Local, taken from the pinned npm package amplify-dynamodb-simulator
#     with `npm pack` (the tarball only, not its dependency tree), extracted into
#     <repo>/.tools/dynamodb-local, only if the jar is not there yet.
# It is idempotent: a second run does nothing. CI runs it before the tests.
set -euo pipefail

readonly SIMULATOR_PKG="amplify-dynamodb-simulator@2.9.30"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${DYNAMODB_LOCAL_DIR:-${repo_root}/.tools/dynamodb-local}"

log() { printf 'install-test-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

install_java() {
	if command -v java >/dev/null 2>&1; then
		log "java found at $(command -v java); skipping JRE install"
		return
	fi
	command -v apt-get >/dev/null 2>&1 ||
		die "java is missing and apt-get is not available; install a Java runtime (17 or newer) yourself"
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || die "java is missing; run as root or install sudo to let this script apt-get a JRE"
		sudo=(sudo)
	fi
	log "java is missing; installing default-jre-headless with apt-get"
	"${sudo[@]}" apt-get update
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends default-jre-headless
	command -v java >/dev/null 2>&1 || die "apt-get finished but java is still not on PATH"
}

install_dynamodb_local() {
	if [ -f "${dest}/DynamoDBLocal.jar" ] && [ -d "${dest}/DynamoDBLocal_lib" ]; then
		log "DynamoDB Local found in ${dest}; skipping download"
		return
	fi
	command -v npm >/dev/null 2>&1 || die "npm is needed to fetch ${SIMULATOR_PKG}; install Node.js/npm first"
	command -v tar >/dev/null 2>&1 || die "tar is needed to unpack ${SIMULATOR_PKG}"

	local work
	work="$(mktemp -d)"
	# shellcheck disable=SC2064 # expand $work now: it is local to this function.
	trap "rm -rf '${work}'" EXIT

	log "fetching ${SIMULATOR_PKG} with npm pack (tarball only)"
	local tarball
	tarball="$(cd "${work}" && npm pack --silent "${SIMULATOR_PKG}" | tail -n 1)"
	[ -f "${work}/${tarball}" ] || die "npm pack did not produce a tarball for ${SIMULATOR_PKG}"

	tar -xzf "${work}/${tarball}" -C "${work}" package/emulator
	[ -f "${work}/package/emulator/DynamoDBLocal.jar" ] ||
		die "${SIMULATOR_PKG} has no package/emulator/DynamoDBLocal.jar; has the package layout changed?"

	# Move into place atomically enough: build next to dest, then rename.
	mkdir -p "$(dirname "${dest}")"
	rm -rf "${dest}.partial"
	mv "${work}/package/emulator" "${dest}.partial"
	rm -rf "${dest}"
	mv "${dest}.partial" "${dest}"
	log "DynamoDB Local installed in ${dest}"
}

install_java
install_dynamodb_local
log "done"
