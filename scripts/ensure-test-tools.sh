#!/usr/bin/env bash
# Installs the Debian packages that tests drive from outside, when they are missing:
#   chromium        api/test/docs-browser.test.ts (Swagger UI in a real browser)
#   kcat            scripts/readme.test.ts (the README's Kafka examples)
#   docker-compose  .ci/run validates docker-compose.yml with it (no container engine needed)
# Without root or apt-get it says what to run and fails, so no test runs without its tool unnoticed.
set -euo pipefail

declare -A BINARY=([chromium]=/usr/bin/chromium [kcat]=kcat [docker-compose]=docker-compose)
missing=()
for package in chromium kcat docker-compose; do
  command -v "${BINARY[$package]}" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "test tools: chromium, kcat and docker-compose are installed"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing for the tests: ${missing[*]}. Install with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "test tools: installing ${missing[*]} with apt-get"
# The package lists may be missing or stale on a fresh machine: refresh them when a first try fails.
if ! apt-get install -y -qq "${missing[@]}"; then
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
for package in "${missing[@]}"; do
  if ! command -v "${BINARY[$package]}" >/dev/null 2>&1; then
    echo "apt-get installed $package but ${BINARY[$package]} is still missing" >&2
    exit 1
  fi
done
echo "test tools: installed ${missing[*]}"
