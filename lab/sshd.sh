#!/usr/bin/env bash
# Private OpenSSH server for the host tests: 127.0.0.1:2222, its own host key, one service user.
# Usage: lab/sshd.sh start|stop|status
# State under var/lab/sshd/:
#   sshd_config, host_ed25519_key, sshd.pid, sshd.log
#   known_hosts          the inventory's trust file, shaped as real ones are (issue 7, item 12):
#                        a comment, a @cert-authority line (host CA host_ca_key, *.example.org),
#                        a @revoked line (retired_host_key, a key that must never be accepted),
#                        then the host's key from ssh-keyscan as [127.0.0.1]:2222
#   secrets/client_key   the service user's private key (ed25519; the inventory's private_key)
#   secrets/password     the service user's password (only for the password-fallback test)
# The user (svc-firstline, home /home/svc-firstline) also gets ~/lab/bin/svcctl, a tiny
# service manager standing in for systemd (see lab/hosts_lab.sh).
set -euo pipefail
LAB_SVC=sshd
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/hosts_lab.sh"

B="$LAB_VAR/sshd"
PORT=${SSHD_PORT:-2222}
PIDFILE="$B/sshd.pid"

healthy() {
  pid_alive "$PIDFILE" && ssh-keyscan -T 2 -p "$PORT" -t ed25519 127.0.0.1 2>/dev/null | grep -q ssh-ed25519
}

provision() {
  mkdir -p "$B/secrets"; chmod 700 "$B/secrets"
  ensure_svc_user
  [ -s "$B/secrets/password" ] || write_secret "$B/secrets/password" "$(random_secret 24)"
  # chpasswd also unlocks the account: with UsePAM no, a '!' in /etc/shadow refuses even key auth.
  printf '%s:%s\n' "$SVC_USER" "$(cat "$B/secrets/password")" | chpasswd
  [ -s "$B/host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C firstline-lab-host -f "$B/host_ed25519_key"
  if [ ! -s "$B/secrets/client_key" ]; then
    ssh-keygen -q -t ed25519 -N '' -C "$SVC_USER@firstline-lab" -f "$B/secrets/client_key"
  fi
  chmod 600 "$B/secrets/client_key"
  install -d -m 700 -o "$SVC_USER" -g "$SVC_USER" "$SVC_HOME/.ssh"
  install -m 600 -o "$SVC_USER" -g "$SVC_USER" "$B/secrets/client_key.pub" "$SVC_HOME/.ssh/authorized_keys"
  cat > "$B/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $B/host_ed25519_key
PidFile $PIDFILE
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $SVC_USER
AuthorizedKeysFile .ssh/authorized_keys
MaxSessions 64
MaxStartups 64:30:128
LogLevel VERBOSE
Subsystem sftp internal-sftp
CONF
  install -d -m 0755 /run/sshd        # privilege separation dir (sshd -t checks it too); /run is tmpfs
  /usr/sbin/sshd -t -f "$B/sshd_config"
}

start() {
  ensure_apt openssh-server sudo   # sudo: the connector's `sudo: true` meets a real sudo (no rule for the user)
  mkdir -p "$B"
  provision
  if healthy; then
    log "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
  else
    pidfile_kill "$PIDFILE"
    port_free "$PORT" || die "127.0.0.1:$PORT is in use by another process"
    /usr/sbin/sshd -f "$B/sshd_config" -E "$B/sshd.log"   # absolute path: sshd re-execs itself
    wait_for 10 healthy || die "sshd did not answer on 127.0.0.1:$PORT (see $B/sshd.log)"
    log "started (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
  fi
  [ -s "$B/host_ca_key" ] || ssh-keygen -q -t ed25519 -N '' -C firstline-lab-host-ca -f "$B/host_ca_key"
  [ -s "$B/retired_host_key" ] || ssh-keygen -q -t ed25519 -N '' -C firstline-lab-retired -f "$B/retired_host_key"
  local scanned
  scanned=$(ssh-keyscan -T 2 -p "$PORT" -t ed25519 127.0.0.1 2>/dev/null)
  [ -n "$scanned" ] || die "ssh-keyscan returned nothing"
  {
    echo "# Firstline lab known_hosts (lab/sshd.sh): markers and comments as OpenSSH reads them"
    echo "@cert-authority *.example.org $(cut -d' ' -f1,2 "$B/host_ca_key.pub")"
    echo "@revoked * $(cut -d' ' -f1,2 "$B/retired_host_key.pub")"
    echo ""
    echo "$scanned"
  } > "$B/known_hosts.new"
  mv "$B/known_hosts.new" "$B/known_hosts"
}

case "${1:-start}" in
  start) start ;;
  stop) pidfile_kill "$PIDFILE"; log "stopped" ;;
  status) if healthy; then log "running (pid $(cat "$PIDFILE"))"; else log "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
