#!/usr/bin/env bash
# Makes sure Debian's headless Chromium and its WebDriver are installed,
# then prints the path of chromedriver, which the dashboard's browser tests
# read from CHROMEDRIVER:
#
#   export CHROMEDRIVER="$(bash .ci/browser.sh)"
#
# Only the path goes to stdout; everything else goes to stderr. Installs
# the packages `chromium` and `chromium-driver` only when missing.
set -euo pipefail

log() { echo "browser.sh: $*" >&2; }

if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  log "installing Debian's chromium and chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium chromium-driver >&2
fi
if ! chromedriver --version >/dev/null 2>&1; then
  log "chromedriver is installed but does not start"
  exit 1
fi
command -v chromedriver
