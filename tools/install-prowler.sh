#!/usr/bin/env bash
# Prowler (the AWS security scanner behind S21's "Security scan passes") in a
# virtual environment of its own: it pins exact versions of boto3/botocore,
# pydantic, pandas, numpy, jsonschema, cryptography… that clash with the
# project's, so it never goes into .venv. validation/aws/prowler.py runs it as
# a subprocess (.venv-prowler/bin/prowler, or $FINKS_PROWLER).
#
#   bash tools/install-prowler.sh            # installs or upgrades to PROWLER_VERSION
#   PROWLER_VENV=/opt/prowler bash tools/install-prowler.sh
#
# The venv (about 2 GB) lives in the user's cache, one per Prowler version, so every
# checkout of the project shares it; .venv-prowler is a link to it. Idempotent: a
# venv already holding this version is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
PROWLER_VERSION="${PROWLER_VERSION:-5.46.0}"
PROWLER_VENV="${PROWLER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/finks/prowler-$PROWLER_VERSION}"
PYTHON="${PYTHON:-python3}"  # Prowler 5.x wants Python >=3.10,<3.14
stamp="$PROWLER_VENV/.installed-$PROWLER_VERSION"
link() {  # .venv-prowler -> the shared venv (an older per-checkout venv there is replaced)
  [ "$PROWLER_VENV" = ".venv-prowler" ] && return 0
  [ -L .venv-prowler ] || rm -rf .venv-prowler
  ln -sfn "$PROWLER_VENV" .venv-prowler
}
if [ -f "$stamp" ] && [ -x "$PROWLER_VENV/bin/prowler" ]; then link; exit 0; fi
mkdir -p "$(dirname "$PROWLER_VENV")"
echo "installing prowler $PROWLER_VERSION into $PROWLER_VENV (its own venv; a few minutes)" >&2
test -x "$PROWLER_VENV/bin/python" || "$PYTHON" -m venv "$PROWLER_VENV"
"$PROWLER_VENV/bin/python" -m pip install -q --upgrade pip
"$PROWLER_VENV/bin/python" -m pip install -q "prowler==$PROWLER_VERSION"
rm -f "$PROWLER_VENV"/.installed-*
"$PROWLER_VENV/bin/prowler" --version >&2
touch "$stamp"
link
