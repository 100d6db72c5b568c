#!/usr/bin/env bash
# Creates .venv (Python 3.11), installs requirements.txt into it and the project itself (editable: `core` and the
# `vit-landscape` command). Safe to rerun: a no-op when up to date.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for c in python3.11 python3; do command -v "$c" >/dev/null 2>&1 && PY="$c" && break; done
fi
[ -n "$PY" ] || { echo "setup.sh: no python3 found" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  echo "setup.sh: creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup.sh: installing requirements (the first time takes a few minutes: torch is large)" >&2
  .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt
  # the project itself, editable; its dependencies are the pinned ones above, and its build needs nothing from outside
  .venv/bin/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
