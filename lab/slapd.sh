#!/usr/bin/env bash
# Private OpenLDAP (slapd 2.5) with ppolicy for the directory tests and demos.
#   ldap://127.0.0.1:3389 (StartTLS)   ldaps://127.0.0.1:6636   ldapi socket under var/lab/slapd/run
# Usage: lab/slapd.sh start|stop|status|reset     (reset = stop + wipe the data + start afresh)
# State under var/lab/slapd/: slapd.d (cn=config), data (mdb), run (pid, ldapi), tls, secrets:
#   secrets/admin      rootdn password (cn=admin,dc=example,dc=org) — tests use it to create users
#   secrets/firstline  the runner's service account cn=firstline,ou=services,dc=example,dc=org
#   secrets/users.json demo users' passwords
#   secrets/portal-demo.json  the portal's demo sign-ins (demo-employee, demo-agent, demo-auditor)
# Extra password policies the tests use (ensure_policies: added to an existing lab too):
#   cn=expire-fast        pwdMaxAge 3 s, pwdGraceAuthNLimit 0 — expired passwords, no grace bind
#   cn=expire-fast-grace  pwdMaxAge 3 s, pwdGraceAuthNLimit 2 — expired, two grace binds
#   cn=no-lockout         pwdLockout FALSE (slapd ignores pwdAccountLockedTime), pwdMaxAge 1 year
# The lab CA (var/lab/ca/ca.crt) signs the server certificate (SAN 127.0.0.1, ::1, localhost).
set -euo pipefail
LAB_SVC=slapd
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

B="$LAB_VAR/slapd"
PORT=${SLAPD_PORT:-3389}
SPORT=${SLAPD_TLS_PORT:-6636}
SUFFIX="dc=example,dc=org"
ROOTDN="cn=admin,$SUFFIX"
SVCDN="cn=firstline,ou=services,$SUFFIX"
PIDFILE="$B/run/slapd.pid"
LDAPI="ldapi://$(printf %s "$B/run/ldapi" | sed 's,/,%2F,g')"

healthy() {
  pid_alive "$PIDFILE" && [ -s "$B/secrets/admin" ] &&
    LDAPTLS_CACERT="$LAB_VAR/ca/ca.crt" ldapsearch -x -H "ldaps://127.0.0.1:$SPORT" -D "$ROOTDN" \
      -y "$B/secrets/admin" -s base -b "$SUFFIX" dn >/dev/null 2>&1
}

provision() {
  rm -rf "$B/slapd.d" "$B/data"
  mkdir -p "$B/slapd.d" "$B/data" "$B/run" "$B/secrets"
  chmod 700 "$B/secrets"
  local admin_pw svc_pw
  admin_pw=$(random_secret 24); svc_pw=$(random_secret 24)
  write_secret "$B/secrets/admin" "$admin_pw"
  write_secret "$B/secrets/firstline" "$svc_pw"

  cat > "$B/config.ldif" <<LDIF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $PIDFILE
olcArgsFile: $B/run/slapd.args
olcLogLevel: none
olcTLSCACertificateFile: $LAB_VAR/ca/ca.crt
olcTLSCertificateFile: $B/tls/server.crt
olcTLSCertificateKeyFile: $B/tls/server.key
olcTLSProtocolMin: 3.3

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/nis.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage by * break

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $SUFFIX
olcRootDN: $ROOTDN
olcRootPW: $(slappasswd -s "$admin_pw")
olcDbDirectory: $B/data
olcDbMaxSize: 104857600
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: member eq
# The service account gets write (not manage) on the password: ppolicy then applies to
# its resets (a manage/rootdn reset bypasses quality and history checks).
olcAccess: {0}to dn.subtree="ou=people,$SUFFIX" attrs=userPassword by dn.exact="$SVCDN" write by self write by anonymous auth by * none
olcAccess: {1}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {2}to dn.subtree="ou=people,$SUFFIX" attrs=pwdAccountLockedTime,pwdReset by dn.exact="$SVCDN" write by users read by * none
olcAccess: {3}to * by users read by * none

dn: olcOverlay={0}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {0}ppolicy
olcPPolicyDefault: cn=default,ou=policies,$SUFFIX
olcPPolicyHashCleartext: TRUE
olcPPolicyUseLockout: FALSE
LDIF
  slapadd -q -n0 -F "$B/slapd.d" -l "$B/config.ldif"

  local users_json="{" first=1 u pw given sn
  {
    cat <<LDIF
dn: $SUFFIX
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,$SUFFIX
objectClass: organizationalUnit
ou: people

dn: ou=external,$SUFFIX
objectClass: organizationalUnit
ou: external

dn: ou=services,$SUFFIX
objectClass: organizationalUnit
ou: services

dn: ou=groups,$SUFFIX
objectClass: organizationalUnit
ou: groups

dn: ou=policies,$SUFFIX
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,$SUFFIX
objectClass: top
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 3
pwdLockoutDuration: 0
pwdFailureCountInterval: 0
pwdMinLength: 8
pwdInHistory: 3
pwdCheckQuality: 2
pwdAllowUserChange: TRUE
pwdMustChange: TRUE

dn: cn=short-lockout,ou=policies,$SUFFIX
objectClass: top
objectClass: device
objectClass: pwdPolicy
cn: short-lockout
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 3
pwdLockoutDuration: 3600
pwdMinLength: 8
pwdInHistory: 3
pwdCheckQuality: 2
pwdAllowUserChange: TRUE
pwdMustChange: TRUE

dn: $SVCDN
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: firstline
userPassword: $(slappasswd -s "$svc_pw")

LDIF
    for entry in "alice:Alice:Anderson" "bob:Bob:Bakker" "carol:Carol:Clarke" "dave:Dave:Dijkstra" \
                 "root-admin:Root:Admin" "frozen:Frozen:Account" "gone:Gone:Leaver"; do
      IFS=: read -r u given sn <<<"$entry"
      pw="Lab-$(random_secret 16)"
      [ $first -eq 1 ] || users_json+=","; first=0
      users_json+="\"$u\":\"$pw\""
      cat <<LDIF
dn: uid=$u,ou=people,$SUFFIX
objectClass: inetOrgPerson
uid: $u
cn: $given $sn
givenName: $given
sn: $sn
mail: $u@example.org
userPassword: $(slappasswd -s "$pw")
LDIF
      case $u in
        frozen) echo "pwdAccountLockedTime: 000001010000Z" ;;   # locked by an administrator, for good
        gone)   echo "pwdEndTime: 2020010100Z" ;;                # validity ended (hour precision)
      esac
      echo
    done
    pw="Lab-$(random_secret 16)"; users_json+=",\"eve\":\"$pw\"}"
    cat <<LDIF
dn: uid=eve,ou=external,$SUFFIX
objectClass: inetOrgPerson
uid: eve
cn: Eve External
givenName: Eve
sn: External
mail: eve@example.net
userPassword: $(slappasswd -s "$pw")

dn: cn=it-admins,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: it-admins
member: uid=root-admin,ou=people,$SUFFIX

dn: cn=staff,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: staff
member: uid=alice,ou=people,$SUFFIX
member: uid=bob,ou=people,$SUFFIX

LDIF
  } > "$B/data.ldif"
  slapadd -q -n1 -F "$B/slapd.d" -l "$B/data.ldif"
  write_secret "$B/secrets/users.json" "$users_json"
  rm -f "$B/data.ldif"   # held password hashes only, but no need to keep them around
}

# policy_ldif NAME MAXAGE GRACE LOCKOUT : one pwdPolicy entry under ou=policies.
policy_ldif() {
  cat <<LDIF
dn: cn=$1,ou=policies,$SUFFIX
objectClass: top
objectClass: device
objectClass: pwdPolicy
cn: $1
pwdAttribute: userPassword
pwdMaxAge: $2
pwdGraceAuthNLimit: $3
pwdLockout: $4
pwdMaxFailure: 3
pwdLockoutDuration: 0
pwdMinLength: 8
pwdInHistory: 3
pwdCheckQuality: 2
pwdAllowUserChange: TRUE
pwdMustChange: TRUE
LDIF
}

# ensure_policies : add the test policies that are missing (idempotent; labs provisioned earlier lack them).
ensure_policies() {
  local spec name
  for spec in "expire-fast 3 0 TRUE" "expire-fast-grace 3 2 TRUE" "no-lockout 31536000 0 FALSE"; do
    set -- $spec; name=$1
    LDAPTLS_CACERT="$LAB_VAR/ca/ca.crt" ldapsearch -x -H "ldaps://127.0.0.1:$SPORT" -D "$ROOTDN" -y "$B/secrets/admin" \
      -s base -b "cn=$name,ou=policies,$SUFFIX" dn >/dev/null 2>&1 && continue
    policy_ldif "$@" | LDAPTLS_CACERT="$LAB_VAR/ca/ca.crt" ldapadd -x -H "ldaps://127.0.0.1:$SPORT" -D "$ROOTDN" \
      -y "$B/secrets/admin" >/dev/null || die "could not add policy cn=$name"
  done
}

# ensure_portal_demo : the portal's demo sign-ins (idempotent; docs/portal.md). Users demo-employee,
# demo-agent (in cn=service-desk-l1, nested in cn=service-desk-agents) and demo-auditor (in cn=auditors);
# their passwords live in secrets/portal-demo.json (made once; re-set when the file was lost).
ensure_portal_demo() {
  local f="$B/secrets/portal-demo.json" fresh=0 u pw json="{" sep="" ldif
  local -A pws=()
  if [ -s "$f" ]; then
    for u in demo-employee demo-agent demo-auditor; do
      pws[$u]=$(sed -n "s/.*\"$u\":\"\([^\"]*\)\".*/\1/p" "$f")
      [ -n "${pws[$u]}" ] || fresh=1
    done
  else
    fresh=1
  fi
  if [ $fresh -eq 1 ]; then
    for u in demo-employee demo-agent demo-auditor; do
      pws[$u]="Demo-$(random_secret 12)"; json+="$sep\"$u\":\"${pws[$u]}\""; sep=","
    done
    write_secret "$f" "$json}"
  fi
  _ld() { LDAPTLS_CACERT="$LAB_VAR/ca/ca.crt" "$@" -x -H "ldaps://127.0.0.1:$SPORT" -D "$ROOTDN" -y "$B/secrets/admin"; }
  _exists() { _ld ldapsearch -s base -b "$1" dn >/dev/null 2>&1; }
  for u in demo-employee:Emma:Employee demo-agent:Arjen:Agent demo-auditor:Aud:Auditor; do
    IFS=: read -r u given sn <<<"$u"
    if ! _exists "uid=$u,ou=people,$SUFFIX"; then
      printf 'dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s %s\ngivenName: %s\nsn: %s\nmail: %s@example.org\nuserPassword: %s\n' \
        "$u" "$SUFFIX" "$u" "$given" "$sn" "$given" "$sn" "$u" "$(slappasswd -s "${pws[$u]}")" | _ld ldapadd >/dev/null \
        || die "could not add demo user $u"
    elif [ $fresh -eq 1 ]; then
      printf 'dn: uid=%s,ou=people,%s\nchangetype: modify\nreplace: userPassword\nuserPassword: %s\n' \
        "$u" "$SUFFIX" "$(slappasswd -s "${pws[$u]}")" | _ld ldapmodify >/dev/null || die "could not set demo password of $u"
    fi
    # a demo sign-in always works after start: no must-change flag, no lock, no failure count
    for a in pwdReset pwdAccountLockedTime pwdFailureTime; do
      printf 'dn: uid=%s,ou=people,%s\nchangetype: modify\ndelete: %s\n' "$u" "$SUFFIX" "$a" | _ld ldapmodify >/dev/null 2>&1 || true
    done
  done
  for ldif in "service-desk-l1|uid=demo-agent,ou=people,$SUFFIX" \
              "service-desk-agents|cn=service-desk-l1,ou=groups,$SUFFIX" \
              "auditors|uid=demo-auditor,ou=people,$SUFFIX"; do
    _exists "cn=${ldif%%|*},ou=groups,$SUFFIX" && continue
    printf 'dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\nmember: %s\n' \
      "${ldif%%|*}" "$SUFFIX" "${ldif%%|*}" "${ldif#*|}" | _ld ldapadd >/dev/null || die "could not add group ${ldif%%|*}"
  done
}

start() {
  if healthy; then
    ensure_policies; ensure_portal_demo
    log "already running (pid $(cat "$PIDFILE")) on ldap://127.0.0.1:$PORT ldaps://127.0.0.1:$SPORT"; return 0
  fi
  ensure_apt slapd ldap-utils openssl
  pidfile_kill "$PIDFILE"
  mkdir -p "$B/run" "$B/tls"
  lab_ca "$LAB_VAR/ca"
  server_cert "$LAB_VAR/ca" "$B/tls" server
  if [ ! -d "$B/slapd.d/cn=config" ] || [ ! -s "$B/secrets/admin" ] || [ ! -s "$B/secrets/users.json" ]; then
    provision
  fi
  port_free "$PORT" || die "port $PORT is in use by another program"
  port_free "$SPORT" || die "port $SPORT is in use by another program"
  slapd -F "$B/slapd.d" -h "ldap://127.0.0.1:$PORT/ ldaps://127.0.0.1:$SPORT/ $LDAPI" \
    || die "slapd failed to start"
  wait_for 15 healthy || die "slapd did not answer on ldaps://127.0.0.1:$SPORT"
  ensure_policies; ensure_portal_demo
  log "running (pid $(cat "$PIDFILE")) on ldap://127.0.0.1:$PORT ldaps://127.0.0.1:$SPORT; CA $LAB_VAR/ca/ca.crt"
}

stop() {
  if [ -s "$PIDFILE" ]; then pidfile_kill "$PIDFILE"; log "stopped"; else log "not running"; fi
}

status() {
  if healthy; then log "running (pid $(cat "$PIDFILE"))"; else log "not running"; return 1; fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  reset) stop; rm -rf "$B/slapd.d" "$B/data" "$B/secrets"; start ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
