#!/usr/bin/env bash
# Private Samba AD DC (realm EXAMPLE.TEST) on loopback only, for the Active Directory flavour
# of the ldap connector. LDAPS on 127.0.0.1:636 with a certificate from the lab CA (SAN 127.0.0.1).
# Usage: lab/samba.sh start|stop|status|reset     (reset = stop + drop the cached domain + start)
# Needs root and free loopback ports 88, 135, 139, 389, 445, 464, 636, 3268, 3269, 49152-49154.
# The provisioned domain is cached under var/lab/samba/dc and reused (provisioning takes ~5 s).
#   secrets/admin      Administrator password      secrets/firstline  svc-firstline password
#   secrets/users.json demo users' passwords
set -euo pipefail
LAB_SVC=samba
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

B="$LAB_VAR/samba"
S="$B/dc"
PIDFILE="$S/run/samba.pid"
BASEDN="DC=example,DC=test"

conf() { printf -- '-s %s' "$S/etc/smb.conf"; }

healthy() {
  pid_alive "$PIDFILE" && [ -s "$B/secrets/admin" ] &&
    LDAPTLS_CACERT="$LAB_VAR/ca/ca.crt" ldapsearch -x -H ldaps://127.0.0.1:636 -D "Administrator@example.test" \
      -y "$B/secrets/admin" -s base -b "$BASEDN" dn >/dev/null 2>&1
}

provision() {
  rm -rf "$S" "$B/secrets"
  mkdir -p "$S" "$B/secrets"
  chmod 700 "$B/secrets"
  local admin_pw svc_pw
  admin_pw="Adm-$(random_secret 20)"; svc_pw="Svc-$(random_secret 20)"
  : > "$B/empty.conf"   # don't inherit /etc/samba/smb.conf
  local t0; t0=$(date +%s.%N)
  samba-tool domain provision -s "$B/empty.conf" --targetdir="$S" --use-rfc2307 \
    --realm=EXAMPLE.TEST --domain=EXAMPLE --server-role=dc --dns-backend=NONE --adminpass="$admin_pw" \
    --option="interfaces=lo" --option="bind interfaces only=yes" --option="log file=$S/log/log.%m" \
    --option="pid directory=$S/run" --option="winbindd socket directory=$S/run/winbindd" \
    --option="ntp signd socket directory=$S/run/ntp_signd" >"$B/provision.log" 2>&1 \
    || die "provision failed, see $B/provision.log"
  # No DNS/NBT/WINS services: they would bind 53/137/138.
  sed -i 's/^\tserver services = .*/\tserver services = s3fs, rpc, ldap, cldap, kdc, drepl, winbindd, kcc/' "$S/etc/smb.conf"
  # Our own certificate (SAN 127.0.0.1) so that clients validate it by address.
  sed -i "/^\[global\]/a\\
\ttls enabled = yes\\
\ttls keyfile = $B/tls/server.key\\
\ttls certfile = $B/tls/server.crt\\
\ttls cafile = $LAB_VAR/ca/ca.crt" "$S/etc/smb.conf"
  local C; C=$(conf)
  # shellcheck disable=SC2086  # $C is two words on purpose
  samba-tool domain passwordsettings set $C --complexity=on --account-lockout-threshold=3 --min-pwd-length=8 \
    --history-length=3 --account-lockout-duration=30 --reset-account-lockout-after=30 --min-pwd-age=0 >/dev/null
  samba-tool ou create "OU=People,$BASEDN" $C >/dev/null
  local users_json="{" first=1 entry u given sn pw ou
  for entry in "alice:Alice:Anderson" "bob:Bob:Bakker" "carol:Carol:Clarke" "dave:Dave:Dijkstra" \
               "root-admin:Root:Admin" "frozen:Frozen:Account" "gone:Gone:Leaver" "eve:Eve:External"; do
    IFS=: read -r u given sn <<<"$entry"
    pw="Lab-$(random_secret 16)"
    ou="OU=People"; [ "$u" = eve ] && ou="CN=Users"   # eve lives outside the users' base DN
    samba-tool user create "$u" "$pw" $C --userou="$ou" --given-name="$given" --surname="$sn" \
      --mail-address="$u@example.org" >/dev/null
    [ $first -eq 1 ] || users_json+=","; first=0
    users_json+="\"$u\":\"$pw\""
  done
  users_json+="}"
  samba-tool group addmembers "Domain Admins" root-admin $C >/dev/null
  samba-tool user disable frozen $C >/dev/null
  samba-tool user create svc-firstline "$svc_pw" $C --description="Firstline runner (lab)" >/dev/null
  # Least privilege, delegated on OU=People only (inherited by user objects there):
  # Reset Password + Change Password rights, read/write lockoutTime and pwdLastSet. Nothing else
  # (not Account Operators, which may also edit group membership and userAccountControl).
  local sid user_cls="bf967aba-0de6-11d0-a285-00aa003049e2"
  sid=$(ldbsearch -H "$S/private/sam.ldb" "(sAMAccountName=svc-firstline)" objectSid | sed -n 's/^objectSid: //p')
  [ -n "$sid" ] || die "cannot read the SID of svc-firstline"
  samba-tool dsacl set $C --objectdn="OU=People,$BASEDN" --action=allow \
    --sddl="(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;$user_cls;$sid)(OA;CIIO;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;$user_cls;$sid)(OA;CIIO;RPWP;28630ebf-41d5-11d1-a9c1-0000f80367c1;$user_cls;$sid)(OA;CIIO;RPWP;bf967a0a-0de6-11d0-a285-00aa003049e2;$user_cls;$sid)" >/dev/null
  # adminCount is maintained by AD's SDProp; set it here so the lab does not depend on its timing.
  # accountExpires 2020-01-01 (FILETIME) makes 'gone' an expired account.
  ldbmodify -H "$S/private/sam.ldb" >/dev/null <<LDIF
dn: CN=Root Admin,OU=People,$BASEDN
changetype: modify
replace: adminCount
adminCount: 1

dn: CN=Gone Leaver,OU=People,$BASEDN
changetype: modify
replace: accountExpires
accountExpires: 132223104000000000
LDIF
  write_secret "$B/secrets/admin" "$admin_pw"
  write_secret "$B/secrets/firstline" "$svc_pw"
  write_secret "$B/secrets/users.json" "$users_json"
  log "provisioned in $(echo "$(date +%s.%N) - $t0" | bc) s"
}

start() {
  if healthy; then log "already running (pid $(cat "$PIDFILE")) on ldaps://127.0.0.1:636"; return 0; fi
  ensure_apt samba samba-ad-dc winbind ldb-tools ldap-utils openssl bc
  pidfile_kill "$PIDFILE" 15
  mkdir -p "$B/tls"
  lab_ca "$LAB_VAR/ca"
  server_cert "$LAB_VAR/ca" "$B/tls" server
  chmod 600 "$B/tls/server.key"
  if [ ! -f "$S/private/sam.ldb" ] || [ ! -s "$B/secrets/users.json" ]; then provision; fi
  local p
  for p in 88 389 445 636; do port_free "$p" || die "port $p on 127.0.0.1 is in use by another program"; done
  mkdir -p "$S/run" "$S/log"
  samba -s "$S/etc/smb.conf" -D || die "samba failed to start, see $S/log"
  wait_for 60 healthy || die "samba did not answer on ldaps://127.0.0.1:636, see $S/log"
  log "running (pid $(cat "$PIDFILE")) on ldaps://127.0.0.1:636; CA $LAB_VAR/ca/ca.crt"
}

stop() {
  if [ -s "$PIDFILE" ]; then pidfile_kill "$PIDFILE" 15; log "stopped"; else log "not running"; fi
}

status() {
  if healthy; then log "running (pid $(cat "$PIDFILE"))"; else log "not running"; return 1; fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  reset) stop; rm -rf "$S" "$B/secrets"; start ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
