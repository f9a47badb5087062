#!/usr/bin/env python3
"""Receives syslog(3) datagrams on a Unix socket (for sendmail: /dev/log) and writes them in
rsyslog's traditional file format, `Mon DD HH:MM:SS host tag[pid]: message`, one per line.
Used only by scripts/record-sendmail-fixtures.sh; stops on SIGTERM."""

import os
import re
import signal
import socket
import sys

socket_path, out_path, hostname = sys.argv[1], sys.argv[2], sys.argv[3]
PRI_AND_TIME = re.compile(rb"^<(\d{1,3})>([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d) ?(.*)$", re.S)

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(socket_path)
os.chmod(socket_path, 0o666)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with open(out_path, "ab", buffering=0) as out:
    print("syslog sink ready", flush=True)
    while True:
        data = sock.recv(65536).rstrip(b"\n\x00")
        match = PRI_AND_TIME.match(data)
        if not match:
            continue
        facility = int(match.group(1)) >> 3
        if facility != 2:  # mail.* only, like rsyslog's mail.* rule
            continue
        out.write(match.group(2) + b" " + hostname.encode() + b" " + match.group(3) + b"\n")
