# Shared by lab/sshd.sh and lab/cups.sh (source after common.sh): the lab "managed host" user.
# The service user the SSH connector logs in as. Its home is fixed (/home/svc-firstline by default)
# because the inventory names remote paths (cleanup paths, the lab service manager) absolutely.
SVC_USER=${SVC_USER:-svc-firstline}
SVC_HOME=${SVC_HOME:-/home/$SVC_USER}
SVC_LAB="$SVC_HOME/lab"

# ensure_svc_user : create the user (no password login unless sshd.sh sets one), its lab tree
# and the tiny lab service manager (svcctl) that stands in for systemd on this machine.
ensure_svc_user() {
  id "$SVC_USER" >/dev/null 2>&1 || useradd -m -d "$SVC_HOME" -s /bin/bash "$SVC_USER"
  # lpadmin: may cancel other users' print jobs over the CUPS unix socket (peer-credential auth).
  getent group lpadmin >/dev/null 2>&1 && usermod -aG lpadmin "$SVC_USER"
  install -d -m 755 -o "$SVC_USER" -g "$SVC_USER" "$SVC_HOME"
  install -d -m 755 -o root -g root "$SVC_LAB" "$SVC_LAB/bin"
  install -d -m 755 -o "$SVC_USER" -g "$SVC_USER" "$SVC_LAB/run" "$SVC_LAB/cache" "$SVC_LAB/keep" "$SVC_LAB/tmp"
  cat > "$SVC_LAB/bin/svcctl.new" <<'SVC'
#!/bin/bash
# Lab service manager (no systemd here): svcctl status|start|stop|restart NAME
# LSB exit codes (LSB Core, init script actions): status 0 running, 3 not running, 4 status
# unknown (no such service, as systemctl uses it); start/stop/restart 0 ok, 4 insufficient
# privilege, 5 not installed (no such service, as systemctl says for a unit that does not exist).
# Daemons are `sleep` processes renamed fl-lab-NAME, detached with setsid, pid in ~/lab/run/NAME.pid.
# "hangd" is a service whose restart hangs (for timeout and remote-kill tests); "flakyd" starts
# and dies a second later (a restart that looks fine when checked at once); "lockedd" refuses
# start/stop/restart to this user (exit 4) and is never started.
set -u
RUN="$(dirname "$0")/../run"
cmd=${1:-}; name=${2:-}
case "$name" in
  labd|printd|hangd|flakyd) ;;
  lockedd) [ "$cmd" = status ] && { echo "stopped"; exit 3; }
           echo "svcctl: $cmd of '$name' is reserved to its operators" >&2; exit 4 ;;
  *) echo "svcctl: unknown service '$name'" >&2; [ "$cmd" = status ] && exit 4; exit 5 ;;
esac
pf="$RUN/$name.pid"
alive() {  # a zombie (state Z, waiting for init to reap it) counts as gone
  [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}
running() { [ -s "$pf" ] && alive "$(cat "$pf")"; }
start() {
  running && return 0
  life=1000000; [ "$name" = flakyd ] && life=1
  setsid bash -c 'exec -a "fl-lab-$0" sleep "$1"' "$name" "$life" </dev/null >/dev/null 2>&1 &
  echo $! > "$pf"
}
stop() {
  running || { rm -f "$pf"; return 0; }
  local pid; pid=$(cat "$pf"); kill "$pid" 2>/dev/null
  for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.02; done
  rm -f "$pf"
}
case "$cmd" in
  status) if running; then echo "running pid $(cat "$pf")"; exit 0; else echo "stopped"; exit 3; fi ;;
  start) start ;;
  stop) stop ;;
  restart)
    if [ "$name" = hangd ]; then sleep 3599; fi
    stop; start ;;
  *) echo "usage: svcctl status|start|stop|restart NAME" >&2; exit 2 ;;
esac
SVC
  chmod 755 "$SVC_LAB/bin/svcctl.new"; mv "$SVC_LAB/bin/svcctl.new" "$SVC_LAB/bin/svcctl"
}
