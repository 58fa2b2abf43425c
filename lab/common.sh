# Shared helpers for the lab service scripts (source it: . "$(dirname "$0")/common.sh").
# Every lab server binds to 127.0.0.1 only and keeps its state under $REPO/var/lab/<svc>/.

REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
LAB_VAR="$REPO/var/lab"
LAB_PY=${LAB_PY:-$REPO/.venv/bin/python}

log() { printf '%s: %s\n' "${LAB_SVC:-lab}" "$*"; }
die() { printf '%s: ERROR: %s\n' "${LAB_SVC:-lab}" "$*" >&2; exit 1; }

# ensure_apt PKG... : install the packages that are missing, without starting their services.
ensure_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  # Docker convention: keep package scripts from starting system daemons on all interfaces.
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; }
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}" >/dev/null
  }
}

# wait_for SECONDS CMD... : run CMD every 0.1 s until it succeeds; fail after SECONDS.
wait_for() {
  local limit=$1; shift
  local tries=$(( limit * 10 )) i
  for (( i = 0; i < tries; i++ )); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# pid_alive PIDFILE : the pidfile names a running process.
pid_alive() {
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# pidfile_kill PIDFILE [SECONDS] : TERM the process named in PIDFILE, wait, then KILL; remove the file.
pidfile_kill() {
  local pf=$1 limit=${2:-10} pid i
  [ -s "$pf" ] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for (( i = 0; i < limit * 10; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
}

# port_free PORT : nothing listens on 127.0.0.1:PORT (TCP).
port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# random_secret [LEN] : an alphanumeric random string (no shell/LDIF-special characters).
random_secret() {
  local n=${1:-24}
  local s=""
  while [ ${#s} -lt "$n" ]; do s+=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9'); done
  printf '%s' "${s:0:$n}"
}

# write_secret FILE VALUE : a mode-600 file holding VALUE (no trailing newline).
write_secret() {
  ( umask 077; printf '%s' "$2" > "$1" )
  chmod 600 "$1"
}

# lab_ca DIR : a lab CA (DIR/ca.crt, DIR/ca.key) made once and reused by every lab service.
lab_ca() {
  local d=$1
  mkdir -p "$d"
  if [ ! -s "$d/ca.crt" ] || [ ! -s "$d/ca.key" ]; then
    ( umask 077
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Firstline lab CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null )
    chmod 644 "$d/ca.crt"
  fi
}

# server_cert CADIR OUTDIR NAME : OUTDIR/NAME.{key,crt} signed by the lab CA, SAN 127.0.0.1, ::1, localhost.
server_cert() {
  local ca=$1 out=$2 name=$3 extra=${4:-}
  mkdir -p "$out"
  if [ -s "$out/$name.crt" ] && openssl x509 -checkend 86400 -noout -in "$out/$name.crt" >/dev/null 2>&1 \
     && openssl verify -CAfile "$ca/ca.crt" "$out/$name.crt" >/dev/null 2>&1; then
    return 0
  fi
  local san="DNS:localhost,IP:127.0.0.1,IP:::1${extra:+,$extra}"
  ( umask 077
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$out/$name.key" -out "$out/$name.csr" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$san" > "$out/$name.ext"
    openssl x509 -req -in "$out/$name.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
      -days 825 -extfile "$out/$name.ext" -out "$out/$name.crt" 2>/dev/null )
  chmod 644 "$out/$name.crt"
  rm -f "$out/$name.csr" "$out/$name.ext"
}
