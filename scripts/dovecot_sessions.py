#!/usr/bin/env python3
"""IMAP sessions against a loopback Dovecot for scripts/record-dovecot-fixtures.sh: each scenario
connects from its own loopback source address (127.0.0.x stands for a VPC address), so the
recorded lines carry distinct rip= values. Usage: dovecot_sessions.py PORT"""
import imaplib
import socket
import ssl
import sys
import threading

PORT = int(sys.argv[1])
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


class FromSource(imaplib.IMAP4):
    def __init__(self, source):
        self.source = source
        super().__init__("127.0.0.1", PORT)

    def _create_socket(self, timeout):
        return socket.create_connection(("127.0.0.1", PORT), timeout or 10, (self.source, 0))


def login(source, user, password, starttls=True):
    try:
        imap = FromSource(source)
        if starttls:
            imap.starttls(CTX)
        try:
            imap.login(user, password)
            imap.select("INBOX")
            imap.logout()
        except imaplib.IMAP4.error:
            try:
                imap.logout()
            except Exception:
                pass
    except Exception as e:  # a refused session is part of what is recorded
        print(f"{source} {user}: {e}", file=sys.stderr)


SCENARIOS = [
    # Lambda-like sources: the master login that works, and the user's own password.
    ("127.0.0.2", "alice*admin", "master-secret", True),
    ("127.0.0.2", "alice", "alice-pass", True),
    # A wrong user password.
    ("127.0.0.3", "alice", "wrong-pass", True),
    # Master login with a wrong master password (a rotation applied to one side).
    ("127.0.0.4", "bob*admin", "old-master-secret", True),
    ("127.0.0.4", "alice*admin", "old-master-secret", True),
    # Master login for an account that does not exist (no OS user).
    ("127.0.0.5", "ghost*admin", "master-secret", True),
    # Plaintext LOGIN before STARTTLS.
    ("127.0.0.6", "alice*admin", "master-secret", False),
]
# One source guessing many names.
SCENARIOS += [("127.0.0.9", name, "123456", True)
              for name in ["admin", "root", "test", "info", "postmaster", "support", "sales", "webmaster"]]

threads = [threading.Thread(target=login, args=s) for s in SCENARIOS]
for t in threads:
    t.start()
for t in threads:
    t.join()
