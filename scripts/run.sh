#!/usr/bin/env bash
# Set up and run Firstline on the embedded default (SQLite in ./var, in-process runs, the
# lab's demo directory and mail sink): starts the portal and prints its URL and the demo
# sign-ins for an employee, an agent and an auditor. Stop it with Ctrl-C.
#   bash scripts/run.sh               the portal on http://127.0.0.1:8000/ (FIRSTLINE_PORT=... to change)
#   bash scripts/run.sh --cli-demo [user]
#                                     the command-line demo instead: lock a demo user by failing to
#                                     sign in three times, then let the `account-unlock` runbook fix it
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
if [ "${1:-}" != "--cli-demo" ]; then
  bash scripts/setup.sh
  bash lab/up.sh slapd smtp
  export FIRSTLINE_ENVIRONMENT=dev          # creates var/audit.key on first use; cookies without Secure (http)
  export FIRSTLINE_DATA_DIR="$REPO/var"
  export FIRSTLINE_INVENTORY="$REPO/lab/inventory.yaml"
  export FIRSTLINE_RUNBOOKS_DIR="$REPO/runbooks"
  PORT=${FIRSTLINE_PORT:-8000}
  export FIRSTLINE_PUBLIC_BASE_URL="http://127.0.0.1:$PORT"
  # the lab directory's groups that make an agent or an auditor (docs/portal.md)
  export FIRSTLINE_AGENT_GROUPS='{"corp": ["cn=service-desk-agents,ou=groups,dc=example,dc=org"]}'
  export FIRSTLINE_AUDITOR_GROUPS='{"corp": ["cn=auditors,ou=groups,dc=example,dc=org"]}'
  .venv/bin/firstline serve --host 127.0.0.1 --port "$PORT" &
  server=$!
  trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; exit 0' INT TERM
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { echo "run: the portal did not start (see var/log/firstline.log)" >&2; exit 1; }
    sleep 0.1
  done
  .venv/bin/python - "$REPO/var/lab/slapd/secrets/portal-demo.json" "$PORT" <<'PY'
import json, sys
pw = json.load(open(sys.argv[1]))
print(f"""
Firstline portal: http://127.0.0.1:{sys.argv[2]}/

Demo sign-ins (lab directory; passwords are made per machine and kept in var/lab/slapd/secrets/):
  employee  demo-employee  {pw['demo-employee']}
  agent     demo-agent     {pw['demo-agent']}
  auditor   demo-auditor   {pw['demo-auditor']}

Mail sent by Firstline lands in var/lab/smtp/mail/. Stop with Ctrl-C; stop the lab with: bash lab/down.sh
""")
PY
  wait "$server"
  exit $?
fi
shift
USER_TO_LOCK=${1:-alice}
bash scripts/setup.sh
bash lab/up.sh slapd smtp
FL=.venv/bin/firstline
# Development mode on the lab: creates var/audit.key on first use (prod never does), data in ./var.
export FIRSTLINE_ENVIRONMENT=dev
export FIRSTLINE_DATA_DIR="$REPO/var"
export FIRSTLINE_INVENTORY="$REPO/lab/inventory.yaml"
export FIRSTLINE_RUNBOOKS_DIR="$REPO/runbooks"

echo
echo "== 08:55, Monday: $USER_TO_LOCK mistypes the password three times"
for _ in 1 2 3; do
  LDAPTLS_CACERT=var/lab/ca/ca.crt ldapwhoami -x -H ldaps://127.0.0.1:6636 \
    -D "uid=$USER_TO_LOCK,ou=people,dc=example,dc=org" -w "not-the-password" >/dev/null 2>&1 || true
done
$FL run account-status -p "user=$USER_TO_LOCK" --as "$USER_TO_LOCK" --role employee || true

echo
echo "== $USER_TO_LOCK asks Firstline to unlock the account"
set +e
$FL run account-unlock --as "$USER_TO_LOCK" --role employee
rc=$?
set -e
number=$($FL tickets list --requester "$USER_TO_LOCK" --limit 1 | awk 'NR==1 && /^FL-/ {print $1}')
if [ -n "$number" ]; then
  echo
  echo "== The ticket, as the auditor sees it"
  $FL tickets show "$number"
fi
echo
echo "== The audit chain"
$FL audit verify
echo
latest=$(ls -t var/lab/smtp/mail 2>/dev/null | head -1 || true)
[ -n "$latest" ] && echo "Notification delivered to the lab mail sink: var/lab/smtp/mail/$latest"
echo "Try more:  $FL --help    ·  stop the lab: bash lab/down.sh"
exit $rc
