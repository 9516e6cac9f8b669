#!/usr/bin/env bash
# The Debian servers and tools the test suite starts on loopback: PostgreSQL (audit store, Dagster storage),
# Prometheus with promtool, the Pushgateway, and chromium (the Dagster UI test). `make test` runs this first, so
# a fresh machine needs nothing but the README's two commands. Installs what is missing when it can (root and
# apt-get); otherwise stops at once with the one command that would.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-pushgateway >/dev/null || missing+=(prometheus-pushgateway)
command -v chromium >/dev/null || missing+=(chromium)
((${#missing[@]})) || exit 0
read -r -a missing <<<"$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
command="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}"
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "The test suite needs Debian packages that are missing: ${missing[*]}." >&2
    echo "Install them as root, then run make test again:  $command" >&2
    exit 1
fi
echo "Installing the Debian packages the tests start: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
