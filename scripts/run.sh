#!/usr/bin/env bash
# Set up and run Firstline on the embedded default (SQLite, in-process, the lab's demo
# directory): start the lab slapd + mail sink, lock the demo user by failing to sign in
# three times, then let the `account-unlock` runbook fix it and print the ticket.
# (When the portal lands, this command starts the portal instead.)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
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
