#!/usr/bin/env bash
# Stop the lab services this project started (by their pidfiles only).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ALL=(winrm cups sshd samba smtp slapd)
SERVICES=("${@:-${ALL[@]}}")
[ $# -gt 0 ] || SERVICES=("${ALL[@]}")
for svc in "${SERVICES[@]}"; do
  [ -f "$HERE/$svc.sh" ] && bash "$HERE/$svc.sh" stop
done
exit 0
