#!/usr/bin/env python3
"""A small fake remote MTA for recording sendmail's log lines (scripts/record-sendmail-fixtures.sh).

Listens on 127.0.0.1 only, on several ports, and answers the way large providers really do so
that sendmail writes its own delivery lines:

  --port-rcpt P      EHLO/MAIL accepted; the reply to RCPT TO depends on the recipient's local
                     part: greylist (451 4.7.1), ratelimit (Gmail's multi-line 421-4.7.28, then
                     close), busy (450 4.2.0), full (452 4.2.2), unknown (Gmail's multi-line
                     550-5.1.1), blocked (554 5.7.1 Spamhaus), msblock (Outlook's 550 5.7.1),
                     bare (451 without an enhanced code), datafail (451 4.3.0 after DATA);
                     anything else is accepted (250 2.0.0 ... gsmtp).
  --port-greet421 P  421 4.7.0 at the greeting, then close.
  --port-helo421 P   220 greeting, then 421 4.7.0 to EHLO/HELO, then close.
  --port-silent P    accepts the connection and never says anything.

Standard library only. Stops on SIGTERM/SIGINT.
"""

import argparse
import asyncio
import signal
import time

HOST = "127.0.0.1"

GMAIL_421 = [
    "421-4.7.28 [127.0.0.1      15] Our system has detected an unusual rate of",
    "421-4.7.28 unsolicited mail originating from your IP address. To protect our",
    "421-4.7.28 users from spam, mail sent from your IP address has been temporarily",
    "421-4.7.28 rate limited. For more information, go to",
    "421-4.7.28  https://support.google.com/mail/?p=UnsolicitedRateLimitError to",
    "421 4.7.28 review our Bulk Email Senders Guidelines. d75a77b69052e-4a7fa1b2c3d - gsmtp",
]
GMAIL_550 = [
    "550-5.1.1 The email account that you tried to reach does not exist. Please try",
    "550-5.1.1 double-checking the recipient's email address for typos or",
    "550-5.1.1 unnecessary spaces. For more information, go to",
    "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser d75a77b69052e-4a7fa1b2c3e - gsmtp",
]
RCPT_REPLIES = {
    "greylist": ["451 4.7.1 <{rcpt}>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/{domain}.html"],
    "ratelimit": GMAIL_421,
    "busy": ["450 4.2.0 <{rcpt}>: Recipient address rejected: Mailbox busy, try again later"],
    "full": ["452-4.2.2 The recipient's inbox is out of storage space. Please direct the", "452 4.2.2 recipient to https://support.google.com/mail/?p=OverQuotaTemp - gsmtp"],
    "unknown": GMAIL_550,
    "blocked": ["554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/127.0.0.1"],
    "msblock": ["550 5.7.1 Unfortunately, messages from [127.0.0.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors."],
    "bare": ["451 Please try again later"],
}


async def send(writer, lines):
    writer.write("".join(line + "\r\n" for line in lines).encode())
    await writer.drain()


async def rcpt_session(reader, writer):
    await send(writer, ["220 mx.fake.test ESMTP ready"])
    data_fail = False
    try:
        while True:
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                await send(writer, ["250-mx.fake.test", "250-PIPELINING", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250 SIZE 35882577"] if verb == "EHLO" else ["250 mx.fake.test"])
            elif verb == "MAIL":
                data_fail = False
                await send(writer, ["250 2.1.0 OK"])
            elif verb == "RCPT":
                rcpt = line.split(":", 1)[1].strip().strip("<>").split(">")[0]
                local, _, domain = rcpt.partition("@")
                key = next((k for k in RCPT_REPLIES if local.startswith(k)), None)
                if key is not None:
                    await send(writer, [l.format(rcpt=rcpt, domain=domain) for l in RCPT_REPLIES[key]])
                    if key == "ratelimit":
                        return
                else:
                    if local.startswith("datafail"):
                        data_fail = True
                    await send(writer, ["250 2.1.5 OK"])
            elif verb == "DATA":
                await send(writer, ["354 Go ahead"])
                while True:
                    body = await reader.readline()
                    if not body or body in (b".\r\n", b".\n"):
                        break
                if data_fail:
                    await send(writer, ["451 4.3.0 Temporary server error. Please try again later"])
                else:
                    await send(writer, [f"250 2.0.0 OK {int(time.time())} d75a77b69052e-4a7fa1b2c3f - gsmtp"])
            elif verb == "RSET":
                await send(writer, ["250 2.0.0 OK"])
            elif verb == "QUIT":
                await send(writer, ["221 2.0.0 closing connection"])
                return
            else:
                await send(writer, ["502 5.5.1 Unrecognized command"])
    finally:
        writer.close()


async def greet421_session(reader, writer):
    await send(writer, ["421 4.7.0 Try again later, closing connection. (EHLO) - gsmtp"])
    writer.close()


async def helo421_session(reader, writer):
    await send(writer, ["220 mx.fake.test ESMTP ready"])
    await reader.readline()
    await send(writer, ["421 4.7.0 [127.0.0.1] Our system has detected an unusual rate of unsolicited mail"])
    writer.close()


async def silent_session(reader, writer):
    try:
        await reader.read()  # until the client gives up
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-rcpt", type=int, required=True)
    parser.add_argument("--port-greet421", type=int, required=True)
    parser.add_argument("--port-helo421", type=int, required=True)
    parser.add_argument("--port-silent", type=int, required=True)
    args = parser.parse_args()
    servers = [
        await asyncio.start_server(rcpt_session, HOST, args.port_rcpt),
        await asyncio.start_server(greet421_session, HOST, args.port_greet421),
        await asyncio.start_server(helo421_session, HOST, args.port_helo421),
        await asyncio.start_server(silent_session, HOST, args.port_silent),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("fake MTA ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
