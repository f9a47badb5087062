#!/usr/bin/env bash
# Records real Dovecot 2.3 imap-login lines for tests/fixtures/dovecot/ with Debian's
# dovecot-imapd on loopback, configured as Cabalmail configures its imap tier
# (cabalmail/cabal-infra docker/imap/configs/dovecot: a master passdb with `*` as separator,
# disable_plaintext_auth = yes, ssl = required, 143-style plain listener only, auth_failure_delay
# = 2 secs, log_timestamp "%Y-%m-%d %H:%M:%S "), on a non-default port, with a private config,
# base and state directories, and passwd-files instead of the system's accounts.
# The readiness check's own connection is recorded too (a session closed before auth).
# login_trusted_networks names an address no session uses, so LOGIN before STARTTLS is refused
# as on the tier. scripts/dovecot_sessions.py then runs the scenarios (a master login that
# works, a wrong password, a wrong master password, a master login for an account that does not
# exist, plaintext LOGIN before STARTTLS, one source guessing many names).
#
# Needs root (dovecot drops privileges to its users), dovecot-imapd, openssl, python3.
# Not run by the tests. Usage: scripts/record-dovecot-fixtures.sh [OUTPUT_FILE] (default: stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/dev/stdout}"
for tool in /usr/sbin/dovecot openssl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y dovecot-imapd openssl python3" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (dovecot drops privileges)" >&2; exit 1; }

work="$(mktemp -d /tmp/dovecot-record.XXXXXX)"
chmod 755 "$work"
port=10143
cleanup() {
  /usr/sbin/dovecot -c "$work/dovecot.conf" stop 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=imap.cabal.example" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
hash() { doveadm pw -s SHA512-CRYPT -p "$1"; }
uid="$(id -u dovecot)"; gid="$(id -g dovecot)"
printf 'alice:%s:%s:%s::%s::\nbob:%s:%s:%s::%s::\n' \
  "$(hash alice-pass)" "$uid" "$gid" "$work/mail/alice" "$(hash bob-pass)" "$uid" "$gid" "$work/mail/bob" >"$work/users"
printf 'admin:%s\n' "$(hash master-secret)" >"$work/master-users"
mkdir -p "$work/run" "$work/state" "$work/mail"
chown dovecot:dovecot "$work/mail"
cat >"$work/dovecot.conf" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $work/run
state_dir = $work/state
log_path = $work/dovecot.log
info_log_path = $work/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
ssl = required
ssl_cert = <$work/cert.pem
ssl_key = <$work/key.pem
disable_plaintext_auth = yes
login_trusted_networks = 127.0.0.250
auth_failure_delay = 2 secs
auth_master_user_separator = *
auth_mechanisms = plain
mail_location = maildir:$work/mail/%u
passdb {
  driver = passwd-file
  master = yes
  args = $work/master-users
}
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT $work/users
}
# Cabalmail's userdb is the system's passwd: an account without an OS user has no userdb entry.
userdb {
  driver = passwd-file
  args = $work/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
  process_limit = 1024
  client_limit = 1
}
service auth {
  client_limit = 4096
}
protocol imap {
  mail_max_userip_connections = 100
}
CONF
/usr/sbin/dovecot -c "$work/dovecot.conf"
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  sleep 0.1
done
python3 scripts/dovecot_sessions.py "$port"
sleep 1
grep 'imap-login:' "$work/dovecot.log" >"$out"
