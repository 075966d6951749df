#!/usr/bin/env bash
# Runs certgate's whole test suite on a fresh Debian machine: installs what
# the tests talk to (real ACME clients, OpenSSL headers for josekit) when it
# is missing, then runs every test with cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need, each with a command or file that proves it is there.
declare -A needs=(
  [certbot]="command -v certbot"
  [lego]="command -v lego"
  [openssl]="command -v openssl"
  [libssl-dev]="test -e /usr/include/openssl/ssl.h"
  [pkg-config]="command -v pkg-config"
  # named is in /usr/sbin, which is not on every user's PATH.
  [bind9]="test -x /usr/sbin/named"
  [bind9-dnsutils]="command -v nsupdate"
  [python3-certbot-dns-rfc2136]="test -d /usr/lib/python3/dist-packages/certbot_dns_rfc2136"
  # Debian's python3 makes a virtualenv with pip only when this is installed.
  [python3-venv]="python3 -m ensurepip --version"
  # tests/operations/status_page.rs loads /status in headless Chromium.
  [chromium]="command -v chromium"
  # The quick start below asks the server for /health.
  [curl]="command -v curl"
  # tests/operations/deploy_files.rs verifies deploy/systemd/certgate.service.
  [systemd]="command -v systemd-analyze"
  # tests/reliability/replicas.rs balances three replicas behind HAProxy.
  [haproxy]="command -v haproxy"
)
missing=()
for package in "${!needs[@]}"; do
  ${needs[$package]} >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# certbot 5.x from PyPI (Debian's certbot predates ACME Renewal Information),
# in a virtualenv under target/ that later runs reuse; tests/acme/ari_certbot.rs
# runs the certbot named by CERTGATE_TEST_CERTBOT5.
certbot_venv="$PWD/target/certbot-venv"
certbot_version=$("$certbot_venv/bin/certbot" --version 2>&1 || true)
case "$certbot_version" in
  "certbot 5."*) ;;
  *)
    echo "installing certbot 5.x into $certbot_venv"
    rm -rf "$certbot_venv"
    python3 -m venv "$certbot_venv"
    "$certbot_venv/bin/pip" install --quiet --disable-pip-version-check 'certbot>=5,<6'
    ;;
esac
export CERTGATE_TEST_CERTBOT5="$certbot_venv/bin/certbot"

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

cargo build --all-targets --locked
# The release binary, built as the container image builds it (deploy/docker/Dockerfile).
bash scripts/build-release.sh

# The README's quick start, word for word, from a scratch directory inside
# the clone: cargo finds the manifest above it, and ./certgate-data is made
# there instead of beside the developer's own. cargo run replaces itself
# with certgate, so $! is the server.
quickstart="$PWD/target/quickstart"
rm -rf "$quickstart"
mkdir -p "$quickstart"
(cd "$quickstart" && exec cargo run --release -- serve) >"$quickstart/serve.log" 2>&1 &
serve_pid=$!
root="$quickstart/certgate-data/ca/root.pem"
deadline=$((SECONDS + 120))
until [ -s "$root" ] && curl -fsS --cacert "$root" https://127.0.0.1:8443/health >/dev/null 2>&1; do
  if ! kill -0 "$serve_pid" 2>/dev/null || ((SECONDS > deadline)); then
    echo "quick start: cargo run --release -- serve did not answer https://127.0.0.1:8443/health"
    cat "$quickstart/serve.log"
    kill "$serve_pid" 2>/dev/null || true
    exit 1
  fi
  sleep 0.2
done

# While it runs, the README's first certificate, word for word, from the
# same directory (tests/operations/deploy_files.rs checks that each of its
# commands is here). lego answers HTTP-01 on port 80, so it runs as root.
if [ "$(id -u)" -ne 0 ]; then as_root="sudo env"; else as_root=env; fi
first_certificate() {
  (cd "$quickstart" && $as_root LEGO_CA_CERTIFICATES=certgate-data/ca/root.pem lego --server https://127.0.0.1:8443/acme/directory --email you@example.com --accept-tos --http -d localhost run) >"$quickstart/lego.log" 2>&1 || return 1
  # lego ran as root: give its files back before reading them (and before
  # the next run's rm -rf).
  if [ "$(id -u)" -ne 0 ]; then sudo chown -R "$(id -u):$(id -g)" "$quickstart/.lego"; fi
  (cd "$quickstart" && openssl x509 -in .lego/certificates/localhost.crt -noout -subject -issuer -enddate) || return 1
  openssl verify -CAfile "$root" -untrusted "$quickstart/.lego/certificates/localhost.issuer.crt" "$quickstart/.lego/certificates/localhost.crt" || return 1
  # The start-up banner names the same command.
  grep -qF "client=LEGO_CA_CERTIFICATES=certgate-data/ca/root.pem lego --server https://127.0.0.1:8443/acme/directory --email you@example.com --accept-tos --http -d localhost run" "$quickstart/serve.log"
}
if ! first_certificate; then
  echo "first certificate: the README's lego command got no certificate for localhost chaining to $root, or the banner names another command"
  cat "$quickstart/lego.log" "$quickstart/serve.log"
  kill "$serve_pid" 2>/dev/null || true
  exit 1
fi
kill -TERM "$serve_pid"
wait "$serve_pid"
echo "quick start: cargo run --release -- serve answered /health with the root it wrote, issued the README's first certificate to lego, and stopped"

# Every fuzz target on its committed corpus, for a bounded time
# (docs/fuzzing.md): a parser that crashes on a known input, or on one the
# fuzzer finds within seconds, fails CI here.
bash scripts/fuzz.sh 20

# Tests that need PostgreSQL note here when none answers (see
# testkit/src/postgres.rs), and the list is printed at the end.
export CERTGATE_TESTS_NOT_RUN="$PWD/target/tests-not-run.txt"
rm -f "$CERTGATE_TESTS_NOT_RUN"
status=0
cargo nextest run --all-targets --locked --no-fail-fast || status=$?
if [ -s "$CERTGATE_TESTS_NOT_RUN" ]; then
  echo "=== NOT RUN: no PostgreSQL server answered at ${CERTGATE_TEST_POSTGRES_URL:-127.0.0.1:5432} ==="
  sort -u "$CERTGATE_TESTS_NOT_RUN"
fi
exit "$status"
