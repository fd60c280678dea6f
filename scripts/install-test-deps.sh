#!/usr/bin/env bash
# Installs what the test suite needs: the Python packages in requirements-dev.txt and,
# for the browser test, Debian's Chromium (Playwright drives /usr/bin/chromium; its own
# browser download is not used) and an emoji font (the pages' icons in its screenshots).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
if [ ! -x /usr/bin/chromium ] || ! dpkg -s fonts-noto-color-emoji >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium \
    fonts-noto-color-emoji >/dev/null
fi
