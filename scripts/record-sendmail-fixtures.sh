#!/usr/bin/env bash
# Records real sendmail log lines for tests/fixtures/maillog/ with Debian's sendmail on loopback.
#
# Sendmail (sendmail-bin, 8.17) runs with a private configuration in a temp dir: its own queue,
# a mailertable that sends every test domain to 127.0.0.1 (never anywhere else), host lookups
# from /etc/hosts only. A fake remote MTA (scripts/fake_mta.py) answers like large providers
# do; a tiny syslog sink (scripts/syslog_sink.py) stands in for rsyslog on /dev/log and writes
# the traditional file format. Messages are submitted to the queue, then two queue runs (the
# second after the queue-return timeout) make sendmail write its delivery lines.
#
# Needs root (sendmail with -C), python3, sendmail-bin, sendmail-cf, m4. Not run by the tests.
# Usage: scripts/record-sendmail-fixtures.sh [OUTPUT_FILE]   (default: stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/dev/stdout}"

for tool in m4 makemap python3 /usr/sbin/sendmail; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y sendmail-bin sendmail-cf m4" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (sendmail -C needs it)" >&2; exit 1; }
# Sendmail insists on a host name that resolves for IPv4 and IPv6. Rather than touching the
# machine's /etc/hosts, run in private mount and UTS namespaces with a hosts file of our own.
if [ -z "${RECORD_IN_NAMESPACE:-}" ]; then
  exec unshare --mount --uts env RECORD_IN_NAMESPACE=1 "$0" "$@"
fi
if [ -e /dev/log ]; then
  echo "/dev/log exists (a syslog daemon runs): stop it or record on a machine without one" >&2
  exit 1
fi

# Not under /tmp: sendmail refuses maps in world-writable directories.
work="$(mktemp -d /var/spool/sendmail-record.XXXXXX)"
chmod 755 "$work"
printf '127.0.0.1 localhost ip-10-0-2-17 ip-10-0-2-17.ec2.internal\n::1 localhost6 ip-10-0-2-17 ip-10-0-2-17.ec2.internal\n' >"$work/hosts"
mount --bind "$work/hosts" /etc/hosts
hostname ip-10-0-2-17
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -f /dev/log
  umount /etc/hosts 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

PORT_RCPT=26025 PORT_GREET421=26026 PORT_HELO421=26027 PORT_REFUSED=26028 PORT_SILENT=26029

python3 scripts/syslog_sink.py /dev/log "$work/maillog" ip-10-0-2-17 >"$work/sink.out" 2>&1 &
pids+=($!)
python3 scripts/fake_mta.py --port-rcpt $PORT_RCPT --port-greet421 $PORT_GREET421 \
  --port-helo421 $PORT_HELO421 --port-silent $PORT_SILENT >"$work/mta.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  grep -q ready "$work/sink.out" 2>/dev/null && grep -q ready "$work/mta.out" 2>/dev/null && break
  sleep 0.1
done

mkdir -p "$work/mqueue" && chmod 700 "$work/mqueue"
printf 'hosts files\naliases files\n' >"$work/service.switch"
: >"$work/aliases"
# Every test domain goes to loopback. The mailer picks the fake MTA's port (each mailer's A=).
cat >"$work/mailertable" <<MT
gmail.com esmtp:[127.0.0.1]
googlemail.com esmtp:localhost
outlook.com esmtp:[127.0.0.1]
hotmail.com esmtp:localhost
yahoo.com esmtp:[127.0.0.1]
icloud.com esmtp:[127.0.0.1]
example.org esmtp:localhost
cabal.test esmtp:[127.0.0.1]
greeting421.example smtp:[127.0.0.1]
helo421.example smtp8:[127.0.0.1]
refused.example dsmtp:[127.0.0.1]
silent.example relay:[127.0.0.1]
nxdomain.example esmtp:nonexistent.invalid
MT
makemap hash "$work/mailertable" <"$work/mailertable"

cat >"$work/record.mc" <<MC
divert(-1)
include(\`/usr/share/sendmail/cf/m4/cf.m4')
divert(0)dnl
OSTYPE(\`debian')dnl
define(\`confDOMAIN_NAME', \`ip-10-0-2-17.ec2.internal')dnl
define(\`QUEUE_DIR', \`$work/mqueue')dnl
define(\`ALIAS_FILE', \`$work/aliases')dnl
define(\`confSERVICE_SWITCH_FILE', \`$work/service.switch')dnl
define(\`confHOSTS_FILE', \`/etc/hosts')dnl
define(\`confLOG_LEVEL', \`9')dnl
define(\`confHOST_STATUS_DIRECTORY', \`')dnl
define(\`confTO_CONNECT', \`5s')dnl
define(\`confTO_ICONNECT', \`5s')dnl
define(\`confTO_INITIAL', \`5s')dnl
define(\`confTO_HELO', \`5s')dnl
define(\`confTO_QUEUERETURN', \`1m')dnl
define(\`confTO_QUEUEWARN', \`0')dnl
define(\`confMIN_QUEUE_AGE', \`0')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confPRIVACY_FLAGS', \`goaway,restrictmailq')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $PORT_RCPT')dnl
define(\`SMTP_MAILER_ARGS', \`TCP \$h $PORT_GREET421')dnl
define(\`SMTP8_MAILER_ARGS', \`TCP \$h $PORT_HELO421')dnl
define(\`DSMTP_MAILER_ARGS', \`TCP \$h $PORT_REFUSED')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $PORT_SILENT')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`mailertable', \`hash -o $work/mailertable')dnl
DAEMON_OPTIONS(\`Family=inet, Name=MTA, Addr=127.0.0.1, Port=26030')dnl
MAILER(\`smtp')dnl
MC
m4 "$work/record.mc" >"$work/record.cf"

sm() { /usr/sbin/sendmail -C "$work/record.cf" -L sm-mta "$@"; }
submit() { # sender recipient...
  local from="$1"; shift
  printf 'Subject: fixture\nFrom: %s\n\nhello\n' "$from" | sm -odq -f "$from" "$@"
}

submit alice@cabal.test someone@gmail.com
submit alice@cabal.test greylist.bob@gmail.com
submit alice@cabal.test ratelimit.carol@gmail.com
submit alice@cabal.test busy.dave@googlemail.com
submit alice@cabal.test full.erin@gmail.com
submit alice@cabal.test unknown.frank@gmail.com
submit alice@cabal.test blocked.grace@yahoo.com
submit alice@cabal.test msblock.heidi@outlook.com msblock.ivan@outlook.com
submit alice@cabal.test bare.judy@hotmail.com
submit alice@cabal.test datafail.ken@icloud.com
submit alice@cabal.test ok.leo@example.org ok.mallory@example.org ok.nia@example.org
submit alice@cabal.test x@greeting421.example
submit alice@cabal.test y@helo421.example
submit alice@cabal.test z1@refused.example
submit alice@cabal.test z2@refused.example
submit alice@cabal.test q@silent.example
submit alice@cabal.test n@nxdomain.example

sm -q -v >/dev/null 2>&1 || true
# dsmtp (refused.example) only delivers when selected (its F=% flag). It runs in a process of
# its own: sendmail caches a host's status per address (not per port), so a refusal would
# otherwise turn every later delivery to 127.0.0.1 into "Connection refused".
sm -qRrefused.example -v >/dev/null 2>&1 || true
# The queue as mailq shows it while messages wait (root may read it despite restrictmailq).
mailq_out="$(sm -bp 2>&1 || true)"
# The queue-return timeout (1m) turns what is still queued into bounces on the next run.
sleep 65
sm -q -v >/dev/null 2>&1 || true
sleep 1
cat "$work/maillog" >"$out"
printf '%s\n' "$mailq_out" >"${MAILQ_OUT:-/dev/null}"
