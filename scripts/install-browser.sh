#!/usr/bin/env bash
# Headless Chromium from Debian's packages (/usr/bin/chromium), for the HTML report's
# browser test (tests/integration/test_html_report.py). Nothing is downloaded when it is
# there already. Needs root or sudo.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then exit 0; fi
sudo=""
if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
echo "install-browser: installing Debian's chromium package" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version >&2
