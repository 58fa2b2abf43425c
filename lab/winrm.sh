#!/usr/bin/env bash
# WS-Management emulator standing in for a Windows host (there is no WinRM server on Linux):
#   http://127.0.0.1:15985/wsman  and  https://127.0.0.1:15986/wsman (certificate from the lab CA)
# Usage: lab/winrm.sh start|stop|status
# State under var/lab/winrm/: emulator.pid, emulator.log, tls/server.{crt,key},
#   secrets/username, secrets/password  (Basic auth of the emulated host)
#   secrets/control_token               (header X-Emulator-Token for /_emulator/{state,seed,reset})
# The lab CA is var/lab/ca/ca.crt (shared with the other lab services; see lab/common.sh).
set -euo pipefail
LAB_SVC=winrm
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

B="$LAB_VAR/winrm"
HTTP_PORT=${WINRM_HTTP_PORT:-15985}
HTTPS_PORT=${WINRM_HTTPS_PORT:-15986}
PIDFILE="$B/emulator.pid"

healthy() {
  pid_alive "$PIDFILE" && [ -s "$B/secrets/control_token" ] &&
    curl -sf --cacert "$LAB_VAR/ca/ca.crt" -H "X-Emulator-Token: $(cat "$B/secrets/control_token")" \
      "https://127.0.0.1:$HTTPS_PORT/_emulator/state" >/dev/null
}

start() {
  ensure_apt openssl curl
  mkdir -p "$B/secrets" "$B/tls"; chmod 700 "$B/secrets"
  lab_ca "$LAB_VAR/ca"
  server_cert "$LAB_VAR/ca" "$B/tls" server
  [ -s "$B/secrets/username" ] || write_secret "$B/secrets/username" "svc-firstline"
  [ -s "$B/secrets/password" ] || write_secret "$B/secrets/password" "$(random_secret 24)"
  [ -s "$B/secrets/control_token" ] || write_secret "$B/secrets/control_token" "$(random_secret 32)"
  if healthy; then
    log "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$HTTP_PORT (http) and :$HTTPS_PORT (https)"
    return 0
  fi
  pidfile_kill "$PIDFILE"
  port_free "$HTTP_PORT" || die "127.0.0.1:$HTTP_PORT is in use by another process"
  port_free "$HTTPS_PORT" || die "127.0.0.1:$HTTPS_PORT is in use by another process"
  nohup "$LAB_PY" "$REPO/lab/winrm_emulator.py" --http "$HTTP_PORT" --https "$HTTPS_PORT" \
    --cert "$B/tls/server.crt" --key "$B/tls/server.key" \
    --user-file "$B/secrets/username" --password-file "$B/secrets/password" \
    --token-file "$B/secrets/control_token" >"$B/emulator.log" 2>&1 &
  echo $! > "$PIDFILE"
  wait_for 15 healthy || die "the emulator did not answer (see $B/emulator.log)"
  log "started (pid $(cat "$PIDFILE")) on 127.0.0.1:$HTTP_PORT (http) and :$HTTPS_PORT (https)"
}

case "${1:-start}" in
  start) start ;;
  stop) pidfile_kill "$PIDFILE"; log "stopped" ;;
  status) if healthy; then log "running (pid $(cat "$PIDFILE"))"; else log "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
