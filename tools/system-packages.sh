#!/usr/bin/env bash
# Debian packages the tests and `finks report` need: Chromium for the browser
# tests (playwright drives it; it never downloads a browser of its own) and
# Graphviz's dot for the plan's layout. Installs what is missing when run as
# root; otherwise says what to install and carries on (those tests then skip
# and say why).
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v dot >/dev/null || missing+=(graphviz)
# Without an emoji font the plan's status symbols render as empty boxes in PNGs.
fc-list 2>/dev/null | grep -qi "color emoji" || missing+=(fonts-noto-color-emoji)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "note: install ${missing[*]} (e.g. sudo apt-get install -y ${missing[*]}); the tests that need them will skip" >&2
fi
