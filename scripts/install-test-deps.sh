#!/usr/bin/env bash
# Installs what the test suite and the lint gate need: requirements-dev.txt (the package,
# editable, with its dev extra: pytest, Playwright, ruff, mypy) and, for the browser test,
# Debian's Chromium (Playwright drives /usr/bin/chromium; its own browser download is not
# used), Debian's nginx for the replica test, and Debian's PostgreSQL for the board's
# database tests (they start their own server in a temporary folder). The app's icons
# are Streamlit's bundled Material Symbols: no emoji font needed.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)  # the replica test
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || need+=(postgresql)  # the board's tests on PostgreSQL
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
