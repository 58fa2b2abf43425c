#!/usr/bin/env bash
# Private CUPS print server for the printer tests: 127.0.0.1:6631 and a unix socket, queues
# office-1, office-2, bugtest-case and Floor2-Color (raw, file:///dev/null), Debian's stock
# (strict) job policy. Tests hold jobs with `lp -H hold` so they stay in the queue.
# Usage: lab/cups.sh start|stop|status
# State under var/lab/cups/: etc (cupsd.conf, cups-files.conf), spool, cache, state (cupsd.pid), log,
#   run/cups.sock  — the unix socket clients use (CUPS_SERVER / -h / ~/.cups/client.conf)
# Permission model (documented in docs/hosts.md): the stock policy lets only the job's owner or
# @SYSTEM (root, group lpadmin) cancel a job. The SSH service user is in lpadmin and reaches cupsd
# over the unix socket, where CUPS authenticates it by peer credentials — no password needed, and
# cancelling over TCP without a password stays refused.
set -euo pipefail
LAB_SVC=cups
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/hosts_lab.sh"

B="$LAB_VAR/cups"
PORT=${CUPS_PORT:-6631}
PIDFILE="$B/state/cupsd.pid"
SOCK="$B/run/cups.sock"
# bugtest-case: the CUPS spelling the inventory names as BugTest-Case (CUPS matches printer
# names without case; issue 7, item 11). Floor2-Color: a queue CUPS itself spells in mixed case.
QUEUES=(office-1 office-2 bugtest-case Floor2-Color)

healthy() {
  pid_alive "$PIDFILE" && CUPS_SERVER="$SOCK" lpstat -r 2>/dev/null | grep -q 'is running'
}

configure() {
  rm -rf "$B/etc" "$B/spool" "$B/cache" "$B/state" "$B/log" "$B/run"
  mkdir -p "$B/etc/ppd" "$B/etc/ssl" "$B/spool/tmp" "$B/cache" "$B/state/certs" "$B/log" "$B/run"
  cat > "$B/etc/cups-files.conf" <<CONF
ServerRoot $B/etc
RequestRoot $B/spool
TempDir $B/spool/tmp
CacheDir $B/cache
StateDir $B/state
AccessLog $B/log/access_log
ErrorLog $B/log/error_log
PageLog $B/log/page_log
Printcap $B/run/printcap
User lp
Group lp
SystemGroup root lpadmin
CONF
  {
    cat <<CONF
LogLevel warn
Listen 127.0.0.1:$PORT
Listen $SOCK
ServerAlias *
Browsing No
WebInterface No
DefaultAuthType Basic
DefaultEncryption Never
MaxJobs 5000
PreserveJobHistory No
<Location />
  Order allow,deny
  Allow 127.0.0.1
</Location>
<Location /admin>
  Order allow,deny
  Allow 127.0.0.1
</Location>
CONF
    sed -n '/<Policy default>/,/<\/Policy>/p' /usr/share/cups/cupsd.conf.default 2>/dev/null ||
      sed -n '/<Policy default>/,/<\/Policy>/p' /etc/cups/cupsd.conf
  } > "$B/etc/cupsd.conf"
  chgrp -R lp "$B/etc" "$B/spool" "$B/cache" "$B/state"
  chmod -R g+rwX "$B/spool" "$B/cache"
  chmod 755 "$B" "$B/run"
}

start() {
  ensure_apt cups cups-client cups-bsd
  mkdir -p "$B"
  if healthy; then
    log "already running (pid $(cat "$PIDFILE")), socket $SOCK"
  else
    pidfile_kill "$PIDFILE"
    port_free "$PORT" || die "127.0.0.1:$PORT is in use by another process"
    configure
    /usr/sbin/cupsd -c "$B/etc/cupsd.conf" -s "$B/etc/cups-files.conf"   # daemonizes; pid in state/
    wait_for 10 healthy || die "cupsd did not start (see $B/log/error_log)"
    log "started (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT and $SOCK"
  fi
  local q
  for q in "${QUEUES[@]}"; do
    CUPS_SERVER="$SOCK" lpstat -p "$q" >/dev/null 2>&1 ||
      CUPS_SERVER="$SOCK" lpadmin -p "$q" -E -v file:///dev/null -D "Lab printer $q" -L "Lab"
  done
  # The print server's own default for the service user: its CUPS clients talk to this cupsd.
  ensure_svc_user
  install -d -m 755 -o "$SVC_USER" -g "$SVC_USER" "$SVC_HOME/.cups"
  printf 'ServerName %s\n' "$SOCK" > "$SVC_HOME/.cups/client.conf"
  chown "$SVC_USER:$SVC_USER" "$SVC_HOME/.cups/client.conf"
}

case "${1:-start}" in
  start) start ;;
  stop) pidfile_kill "$PIDFILE"; log "stopped" ;;
  status) if healthy; then log "running (pid $(cat "$PIDFILE"))"; else log "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
