#!/bin/sh
# The dashboard's browser tests drive Debian's chromium through playwright-core (npx playwright install
# cannot download here). Installs it with apt-get only when /usr/bin/chromium is missing; a test never
# skips itself because the browser is not there.
set -e
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-chromium: /usr/bin/chromium is missing; install it as root: apt-get install -y chromium" >&2
  exit 1
fi
echo "ensure-chromium: installing chromium with apt-get (once)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
