#!/usr/bin/env bash
# Lab SMTP sink (aiosmtpd) on 127.0.0.1:8025; every message lands as a file in var/lab/smtp/mail/.
# Usage: lab/smtp.sh start|stop|status|clear
set -euo pipefail
LAB_SVC=smtp
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

B="$LAB_VAR/smtp"
PORT=${SMTP_PORT:-8025}
PIDFILE="$B/smtp.pid"

healthy() {
  pid_alive "$PIDFILE" && "$LAB_PY" -c "import smtplib; s = smtplib.SMTP('127.0.0.1', $PORT, timeout=2); s.noop(); s.quit()"
}

start() {
  if healthy >/dev/null 2>&1; then log "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"; return 0; fi
  [ -x "$LAB_PY" ] || die "no Python at $LAB_PY (create the venv: python3 -m venv .venv && .venv/bin/pip install -e '.[dev]')"
  "$LAB_PY" -c "import aiosmtpd" 2>/dev/null || die "aiosmtpd is missing from $LAB_PY (pip install -e '.[dev]')"
  pidfile_kill "$PIDFILE"
  port_free "$PORT" || die "port $PORT is in use by another program"
  mkdir -p "$B/mail"
  nohup "$LAB_PY" "$REPO/lab/smtp_sink.py" --port "$PORT" --dir "$B/mail" >"$B/smtp.log" 2>&1 &
  echo $! > "$PIDFILE"
  wait_for 15 healthy || die "the SMTP sink did not answer, see $B/smtp.log"
  log "running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT; mail in $B/mail"
}

case "${1:-start}" in
  start) start ;;
  stop) if [ -s "$PIDFILE" ]; then pidfile_kill "$PIDFILE"; log "stopped"; else log "not running"; fi ;;
  status) if healthy >/dev/null 2>&1; then log "running (pid $(cat "$PIDFILE"))"; else log "not running"; exit 1; fi ;;
  clear) rm -f "$B/mail/"*.eml; log "mailbox cleared" ;;
  *) echo "usage: $0 start|stop|status|clear" >&2; exit 2 ;;
esac
