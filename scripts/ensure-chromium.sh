#!/usr/bin/env bash
# Installs Debian's chromium, which api/test/docs-browser.test.ts drives, when it is missing.
# Without root or apt-get it says what to run and fails, so the tests never run without it unnoticed.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  echo "chromium: $CHROMIUM"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "chromium is missing ($CHROMIUM); the browser test needs it. Install it with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y chromium" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Package lists may be absent on a fresh machine; fetch them only then.
if ! apt-cache show chromium >/dev/null 2>&1; then apt-get update; fi
apt-get install -y chromium
if [ ! -x "$CHROMIUM" ]; then
  echo "apt-get installed chromium but $CHROMIUM is still missing" >&2
  exit 1
fi
echo "chromium: installed $CHROMIUM"
