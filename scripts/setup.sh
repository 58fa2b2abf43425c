#!/usr/bin/env bash
# Create/refresh the Python environment (.venv) with the pinned dependencies.
# Idempotent; apt packages for the lab services are installed by each lab/<svc>.sh.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: Python 3.11 or newer is needed (found: $("$PY" --version 2>&1))." >&2
  echo "setup: install it (Debian: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv 2>/dev/null || {
    [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; }
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q python3-venv >/dev/null
    "$PY" -m venv .venv
  }
fi
stamp=.venv/.firstline-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python dependencies into .venv (pinned in pyproject.toml)"
  mkdir -p var/log
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  if ! .venv/bin/python -m pip install -q -e '.[dev]' >var/log/pip-install.log 2>&1; then
    tail -30 var/log/pip-install.log >&2
    echo "setup: pip install failed; the whole log is in var/log/pip-install.log" >&2
    exit 1
  fi
  touch "$stamp"
fi
# Portal translations: compile the gettext catalogues (the portal also compiles them in
# memory at start, so a read-only install works without the .mo files).
.venv/bin/pybabel -q compile -d portal/locale -D messages >/dev/null 2>&1 || {
  echo "setup: compiling the portal translations failed: .venv/bin/pybabel compile -d portal/locale" >&2; exit 1; }
# Byte-compile Firstline's own modules. Every `firstline` start, portal process and worker
# then loads them instead of compiling ~50 source files again (0.1-0.3 s per process), also
# where PYTHONDONTWRITEBYTECODE is set, as on this workplace's machines. A stale .pyc is
# never used: Python checks it against the source's modification time.
.venv/bin/python -m compileall -q -j 0 runner connectors portal >/dev/null || {
  echo "setup: byte-compiling Firstline's modules failed: .venv/bin/python -m compileall runner connectors portal" >&2; exit 1; }
