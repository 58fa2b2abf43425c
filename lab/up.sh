#!/usr/bin/env bash
# Start the lab services on loopback (each script installs its apt packages if missing).
# Usage: lab/up.sh [SERVICE...]   default: every service the tests need.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ALL=(slapd smtp samba sshd cups winrm)
SERVICES=("${@:-${ALL[@]}}")
[ $# -gt 0 ] || SERVICES=("${ALL[@]}")
for svc in "${SERVICES[@]}"; do
  [ -f "$HERE/$svc.sh" ] || { echo "lab: no script for '$svc' (have: ${ALL[*]})" >&2; exit 2; }
  bash "$HERE/$svc.sh" start
done
