#!/usr/bin/env python3
"""Writes the example incidents of examples/: for each, the Alertmanager payload, the replay
snapshot (the format of docs/contracts.md, "Replay snapshot", with sendmail lines in the format Cabalmail's tiers log) and the
expected verdict. The files are committed; rerun this after changing an incident:

    python3 examples/generate.py

Deterministic: no clock, no randomness. Addresses use reserved names (example.org, cabal.example)
or well-known provider domains, IPs come from documentation ranges where they are ours.
"""
import datetime as dt
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURED = dt.datetime(2026, 11, 28, 20, 15, 0, tzinfo=dt.timezone.utc)
STARTS = CAPTURED - dt.timedelta(minutes=16, seconds=30)
WINDOW_FROM = STARTS - dt.timedelta(minutes=15)
ACCOUNT = "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/"
TASKS = {
    "imap": ["9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5"],
    "smtp-in": ["1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6", "2b3c4d5e6f7a48b9c0d1e2f3a4b5c6d7"],
    "smtp-out": ["3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8", "4d5e6f7a8b9c40d1e2f3a4b5c6d7e8f9"],
}
HOSTS = {"imap": "ip-10-0-1-23", "smtp-in": "ip-10-0-1-41", "smtp-out": "ip-10-0-2-17"}
NAT_IP = "203.0.113.7"
ZONES = ["zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"]


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(t):
    return int(t.timestamp() * 1000)


class Log:
    """Sendmail lines of one tier, with CloudWatch timestamps and per-task streams."""

    def __init__(self, tier):
        self.tier = tier
        self.events = []
        self.n = 0

    def line(self, at, text, pid=812, task=None):
        task = task or TASKS[self.tier][self.n % len(TASKS[self.tier])]
        self.n += 1
        qid = f"5AS{at.strftime('%H%M')}{self.n:05d}"[:14]
        prefix = f"{at.strftime('%b %d %H:%M:%S')} {HOSTS[self.tier]} sm-mta[{pid + self.n % 7}]"
        self.events.append({
            "timestamp": ms(at),
            "message": f"{prefix}: {qid}: {text}",
            "log_stream": f"{self.tier}/{self.tier}/{task}",
        })


def spread(start_min, end_min, count):
    """`count` instants between `start_min` and `end_min` minutes before capture."""
    step = (start_min - end_min) * 60 / max(count, 1)
    return [CAPTURED - dt.timedelta(seconds=start_min * 60 - k * step) for k in range(count)]


def mailq(tier, depths):
    return [{"task": task, "probe": "mailq",
             "output": f"\t\tTotal requests: {depth}\r\n" if depth else "Mail queue is empty\r\n",
             "exit_status": 0, "error": None}
            for task, depth in zip(TASKS[tier], depths)]


def tier(tier_name, log, depths):
    return {"tasks": [ACCOUNT + t for t in TASKS[tier_name]],
            "exec": mailq(tier_name, depths),
            "log_events": sorted(log.events, key=lambda e: e["timestamp"]),
            "log_error": None}


def nat(state="running", ip=NAT_IP):
    return {"instances": [{"id": "i-0a1b2c3d4e5f60718", "name": "cabal-nat-0", "state": state,
                           "public_ip": ip, "availability_zone": "us-east-1a",
                           "launch_time": "2026-10-02T08:12:44Z"}],
            "gateways": [], "error": None}


def dnsbl(listed=None):
    listed = listed or {}
    return {NAT_IP: {zone: listed.get(zone, []) for zone in ZONES}}


def snapshot(tiers, nat_record, dnsbl_record):
    out = {"captured_at": rfc3339(CAPTURED),
           "window": {"from": rfc3339(WINDOW_FROM), "to": rfc3339(CAPTURED)},
           "tiers": tiers, "nat": nat_record}
    if dnsbl_record is not None:
        out["dnsbl"] = dnsbl_record
    return out


def payload(alertname="SendmailDeferredSpike", severity="warning"):
    rule = {
        "SendmailDeferredSpike": "more than 10 sendmail stat=Deferred lines across the mail tiers in 10 minutes, for 15 minutes",
        "SendmailBouncedSpike": "more than 15 sendmail dsn=5 lines across the mail tiers in 30 minutes, for 15 minutes",
    }[alertname]
    group_key = f'{{}}:{{alertname="{alertname}", severity="{severity}"}}'
    alert = {
        "status": "firing",
        "labels": {"alertname": alertname, "severity": severity, "job": "cloudwatch"},
        "annotations": {"summary": rule,
                        "runbook_url": "https://github.com/cabalmail/cabal-infra/blob/main/docs/operations/runbooks/"
                                       + ("sendmail-deferred-spike.md" if "Deferred" in alertname else "sendmail-bounced-spike.md")},
        "startsAt": rfc3339(STARTS),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=sum%28sendmail_deferred%29",
        "fingerprint": "c3a1d2e4f5b60718" if "Deferred" in alertname else "b3a1d2e4f5b60719",
    }
    return {"receiver": "cabal-triage", "status": "firing", "alerts": [alert],
            "groupLabels": {"alertname": alertname, "severity": severity},
            "commonLabels": alert["labels"], "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager:9093", "version": "4", "groupKey": group_key,
            "truncatedAlerts": 0}


def quiet(tier_name):
    return tier(tier_name, Log(tier_name), [0] * len(TASKS[tier_name]))


GMAIL = "relay=gmail-smtp-in.l.google.com. [142.250.31.27]"


def greylist_storm():
    out = Log("smtp-out")
    users = ["anna", "ben", "chloe", "dev", "emma", "farid", "gus", "hana", "ivan", "jo"]
    for k, at in enumerate(spread(28, 1, 90)):
        user = users[k % len(users)]
        if k % 6 == 5:
            # Sendmail's host-status cache: a later message to the same host in the same run.
            out.line(at, f"to=<{user}.{k}@gmail.com>, delay=00:{k % 50:02d}:10, xdelay=00:00:00, mailer=esmtp, pri={120000 + k * 30}, {GMAIL}, dsn=4.0.0, stat=Deferred")
        else:
            out.line(at, f"to=<{user}.{k}@gmail.com>, delay=00:{k % 50:02d}:02, xdelay=00:00:02, mailer=esmtp, pri={120000 + k * 30}, {GMAIL}, dsn=4.7.28, stat=Deferred: 421-4.7.28 [{NAT_IP}      15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.")
    for k, at in enumerate(spread(20, 5, 6)):
        out.line(at, f"to=<team{k}@outlook.com>, delay=00:0{k}:40, xdelay=00:00:01, mailer=esmtp, pri=90000, relay=outlook-com.olc.protection.outlook.com. [52.101.42.10], dsn=4.3.2, stat=Deferred: 451 4.3.2 Temporary server error. Please try again later. ATTR5 [DM6NAM10FT031.eop-nam10.prod.protection.outlook.com]")
    tiers = {"imap": quiet("imap"), "smtp-in": quiet("smtp-in"), "smtp-out": tier("smtp-out", out, [42, 42])}
    return snapshot(tiers, nat(), dnsbl())


def nat_stopped():
    out = Log("smtp-out")
    domains = [("gmail.com", "gmail-smtp-in.l.google.com."), ("yahoo.com", "mta5.am0.yahoodns.net."),
               ("example.org", "mx.example.org."), ("icloud.com", "mx01.mail.icloud.com."),
               ("outlook.com", "outlook-com.olc.protection.outlook.com.")]
    for k, at in enumerate(spread(14, 1, 70)):
        domain, mx = domains[k % len(domains)]
        if k % 3 == 0:
            out.line(at, f"to=<person{k}@{domain}>, delay=00:0{k % 10}:00, xdelay=00:01:15, mailer=esmtp, pri={30000 + k * 90}, relay={mx}, dsn=4.4.1, stat=Deferred: Connection timed out with {mx}")
        elif k % 3 == 1:
            out.line(at, f"to=<person{k}@{domain}>, delay=00:0{k % 10}:30, xdelay=00:00:00, mailer=esmtp, pri={30000 + k * 90}, relay={domain}, dsn=4.4.3, stat=Deferred: Name server timeout")
        else:
            out.line(at, f"to=<person{k}@{domain}>, delay=00:0{k % 10}:45, xdelay=00:00:00, mailer=esmtp, pri={30000 + k * 90}, relay={domain}, dsn=4.4.3, stat=Deferred: {domain}: No route to host")
    tiers = {"imap": quiet("imap"), "smtp-in": quiet("smtp-in"), "smtp-out": tier("smtp-out", out, [67, 67])}
    # A stopped NAT instance keeps no public IP: nothing to check against blocklists.
    return snapshot(tiers, nat(state="stopped", ip=None), None)


def imap_local_delivery():
    imap = Log("imap")
    for k, at in enumerate(spread(29, 1, 48)):
        user = ["chris", "dana", "eli"][k % 3]
        if k % 4 == 3:
            imap.line(at, f"to=<{user}@cabal.example>, delay=00:{k % 30:02d}:05, xdelay=00:00:00, mailer=local, pri={30000 + k * 90}, dsn=4.3.0, stat=Deferred: local mailer (/usr/bin/procmail) exited with EX_OSERR", pid=301)
        else:
            imap.line(at, f"to=<{user}@cabal.example>, delay=00:{k % 30:02d}:03, xdelay=00:00:01, mailer=local, pri={30000 + k * 90}, dsn=4.0.0, stat=Deferred: local mailer (/usr/bin/procmail) exited with EX_TEMPFAIL", pid=301)
    tiers = {"imap": tier("imap", imap, [37]), "smtp-in": quiet("smtp-in"), "smtp-out": quiet("smtp-out")}
    return snapshot(tiers, nat(), dnsbl())


def smtp_in_relay():
    inbound = Log("smtp-in")
    for k, at in enumerate(spread(25, 1, 60)):
        user = ["chris", "dana", "eli", "fern"][k % 4]
        if k % 5 == 4:
            inbound.line(at, f"to=<{user}@cabal.example>, delay=00:{k % 25:02d}:00, xdelay=00:00:00, mailer=relay, pri={30000 + k * 60}, relay=imap.cabal.internal., dsn=4.4.3, stat=Deferred: Name server: imap.cabal.internal.: host name lookup failure", pid=455)
        else:
            inbound.line(at, f"to=<{user}@cabal.example>, delay=00:{k % 25:02d}:01, xdelay=00:00:00, mailer=relay, pri={30000 + k * 60}, relay=imap.cabal.internal. [10.0.1.23], dsn=4.0.0, stat=Deferred: Connection refused by imap.cabal.internal.", pid=455)
    tiers = {"imap": quiet("imap"), "smtp-in": tier("smtp-in", inbound, [31, 33]), "smtp-out": quiet("smtp-out")}
    return snapshot(tiers, nat(), dnsbl())


def remote_congestion():
    out = Log("smtp-out")
    for k, at in enumerate(spread(27, 2, 36)):
        if k % 3 == 0:
            out.line(at, f"to=<friend{k}@icloud.com>, delay=00:{k % 20:02d}:04, xdelay=00:00:01, mailer=esmtp, pri={60000 + k * 90}, relay=mx01.mail.icloud.com. [17.57.154.6], dsn=4.3.0, reply=451 4.3.0 Temporary server error. Please try again later, stat=Deferred: 451 4.3.0 Temporary server error. Please try again later")
        elif k % 3 == 1:
            out.line(at, f"to=<colleague{k}@example.org>, delay=00:{k % 20:02d}:09, xdelay=00:00:02, mailer=esmtp, pri={60000 + k * 90}, relay=mx.example.org. [198.51.100.25], dsn=4.3.2, stat=Deferred: 421 4.3.2 System not accepting network messages")
        else:
            out.line(at, f"to=<client{k}@example.net>, delay=00:{k % 20:02d}:11, xdelay=00:00:05, mailer=esmtp, pri={60000 + k * 90}, relay=mail.example.net. [198.51.100.80], dsn=4.5.0, stat=Deferred: 421 4.5.0 Too many concurrent SMTP connections; please try again later")
    tiers = {"imap": quiet("imap"), "smtp-in": quiet("smtp-in"), "smtp-out": tier("smtp-out", out, [18, 18])}
    return snapshot(tiers, nat(), dnsbl())


def spike_over():
    out = Log("smtp-out")
    for k, at in enumerate(spread(31, 17, 40)):
        out.line(at, f"to=<reader{k}@gmail.com>, delay=00:{k % 14:02d}:02, xdelay=00:00:01, mailer=esmtp, pri={90000 + k * 30}, {GMAIL}, dsn=4.7.28, stat=Deferred: 421-4.7.28 [{NAT_IP}      15] Our system has detected an unusual rate of unsolicited mail originating from your IP address.")
    tiers = {"imap": quiet("imap"), "smtp-in": quiet("smtp-in"), "smtp-out": tier("smtp-out", out, [0, 0])}
    return snapshot(tiers, nat(), dnsbl())


def address_map_stale():
    inbound = Log("smtp-in")
    for k, at in enumerate(spread(29, 1, 24)):
        user = ["newhire", "sales", "jobs"][k % 3]
        inbound.line(at, f"to=<{user}@cabal.example>, delay=00:00:00, xdelay=00:00:00, mailer=local, pri=30000, dsn=5.1.1, stat=User unknown", pid=455)
    snap_in = tier("smtp-in", inbound, [0, 0])
    modified = int((CAPTURED - dt.timedelta(hours=6, minutes=12)).timestamp())
    snap_in["exec"] = [{"task": t, "probe": "virtusertable",
                        "output": f"214 /etc/mail/virtusertable\r\n{modified}\r\n",
                        "exit_status": 0, "error": None} for t in TASKS["smtp-in"]]
    tiers = {"imap": quiet("imap"), "smtp-in": snap_in, "smtp-out": quiet("smtp-out")}
    for name in ("imap", "smtp-out"):
        tiers[name].pop("exec")
    return snapshot(tiers, nat(), dnsbl())


def bounced_dsn5_deferrals():
    """The bounced alert fires on "dsn=5" lines, most of which are deferrals: sendmail 8.17 logs
    the dsn= and reply= of an earlier recipient of the same connection beside this recipient's
    stat=Deferred. Only the two real bounces are bounces."""
    out = Log("smtp-out")
    for k, at in enumerate(spread(26, 2, 18)):
        out.line(at, f"to=<member{k}@example.net>, delay=00:{k % 20:02d}:05, xdelay=00:00:02, mailer=esmtp, pri={120000 + k * 30}, relay=mx.example.net. [198.51.100.30], dsn=5.3.4, reply=552 5.3.4 Message size exceeds fixed limit, stat=Deferred: 450 4.2.0 <member{k}@example.net>: Recipient address rejected: Mailbox busy, try again later")
    for k, at in enumerate(spread(20, 4, 2)):
        out.line(at, f"to=<big{k}@example.net>, delay=00:00:05, xdelay=00:00:02, mailer=esmtp, pri=120000, relay=mx.example.net. [198.51.100.30], dsn=5.3.4, reply=552 5.3.4 Message size exceeds fixed limit, stat=Service unavailable")
    tiers = {"imap": quiet("imap"), "smtp-in": quiet("smtp-in"), "smtp-out": tier("smtp-out", out, [18, 18])}
    return snapshot(tiers, nat(), dnsbl())


def logs_stalled():
    """smtp-out's queue grows to 63 while its log group went quiet 23 minutes ago (on Cabalmail
    the tasks' logs leave through the same NAT as their mail): the few deferrals before the
    silence are 4.4. The queue decides; the silence is said and points at egress."""
    out = Log("smtp-out")
    domains = [("gmail.com", "gmail-smtp-in.l.google.com."), ("yahoo.com", "mta5.am0.yahoodns.net."),
               ("example.org", "mx.example.org.")]
    for k, at in enumerate(spread(29, 24, 3)):
        domain, mx = domains[k]
        out.line(at, f"to=<person{k}@{domain}>, delay=00:0{k}:10, xdelay=00:01:15, mailer=esmtp, pri={30000 + k * 90}, relay={mx}, dsn=4.4.1, stat=Deferred: Connection timed out with {mx}")
    tiers = {"imap": quiet("imap"), "smtp-in": quiet("smtp-in"), "smtp-out": tier("smtp-out", out, [63, 63])}
    newest = {"imap": CAPTURED - dt.timedelta(seconds=40), "smtp-in": CAPTURED - dt.timedelta(seconds=75),
              "smtp-out": CAPTURED - dt.timedelta(minutes=23, seconds=20)}
    for name, at in newest.items():
        tiers[name]["newest_log_event_ms"] = ms(at)
    return snapshot(tiers, nat(), dnsbl())


def smtp_in_shared_queue():
    """smtp-in's two tasks share one queue on EFS (Cabalmail's smtp-in-queue volume): both print
    the same 4 requests. Counted once, the queue is below the threshold and the deferrals to imap
    in the window are over: the spike has passed (added up, 8 made smtp-in the offender)."""
    inbound = Log("smtp-in")
    for k, at in enumerate(spread(29, 18, 14)):
        user = ["chris", "dana"][k % 2]
        inbound.line(at, f"to=<{user}@cabal.example>, delay=00:{k % 10:02d}:01, xdelay=00:00:00, mailer=relay, pri={30000 + k * 60}, relay=imap.cabal.internal. [10.0.1.23], dsn=4.0.0, stat=Deferred: Connection refused by imap.cabal.internal.", pid=455)
    tiers = {"imap": quiet("imap"), "smtp-in": tier("smtp-in", inbound, [4, 4]), "smtp-out": quiet("smtp-out")}
    return snapshot(tiers, nat(), dnsbl())


ZONE_OF = {"9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5": "us-east-1a",
           "1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6": "us-east-1a",
           "2b3c4d5e6f7a48b9c0d1e2f3a4b5c6d7": "us-east-1b",
           "3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8": "us-east-1a",
           "4d5e6f7a8b9c40d1e2f3a4b5c6d7e8f9": "us-east-1b"}
EXEC_TIMEOUT = "ECS Exec did not finish within the triage's remaining 10000 ms"


def task_details(tier_name):
    """Each task as ECS describes it, with its zone (ECS Exec enabled, agent running)."""
    return [{"arn": ACCOUNT + t, "id": t, "last_status": "RUNNING", "exec_enabled": True,
             "containers": [{"name": tier_name, "last_status": "RUNNING", "exec_agent": "RUNNING"}],
             "availability_zone": ZONE_OF[t]} for t in TASKS[tier_name]]


def zoned(tiers, hung):
    """Adds each task's zone; the tasks in `hung` never answer ECS Exec (their agent reaches
    ssmmessages through a broken zone)."""
    for name, recorded in tiers.items():
        recorded["task_details"] = task_details(name)
        for record in recorded.get("exec", []):
            if record["task"] in hung:
                record.update({"output": None, "exit_status": None, "error": EXEC_TIMEOUT})
    return tiers


def two_zone_nat(b_instance, b_state, b_eni, b_route_target, b_route_state):
    """Cabalmail's NAT per zone: cabal-nat-0 in us-east-1a, cabal-nat-1 in us-east-1b, one
    private route table per zone whose default route targets the NAT's interface."""
    return {"instances": [
                {"id": "i-0a1b2c3d4e5f60718", "name": "cabal-nat-0", "state": "running",
                 "public_ip": NAT_IP, "availability_zone": "us-east-1a",
                 "launch_time": "2026-10-02T08:12:44Z", "source_dest_check": False,
                 "network_interfaces": ["eni-0a0a0a0a0a0a0a0a0"]},
                {"id": b_instance, "name": "cabal-nat-1", "state": b_state,
                 "public_ip": None, "availability_zone": "us-east-1b",
                 "launch_time": "2026-11-28T19:40:02Z", "source_dest_check": False,
                 "network_interfaces": [b_eni]}],
            "gateways": [], "error": None,
            "route_tables": [
                {"id": "rtb-0a1a1a1a1a1a1a1a1", "name": "cabal-private-rt-0",
                 "availability_zones": ["us-east-1a"],
                 "default_route": {"target": "eni-0a0a0a0a0a0a0a0a0", "state": "active"}},
                {"id": "rtb-0b2b2b2b2b2b2b2b2", "name": "cabal-private-rt-1",
                 "availability_zones": ["us-east-1b"],
                 "default_route": {"target": b_route_target, "state": b_route_state}}]}


def zone_b_egress_lines():
    """smtp-out: the task in zone a delivers; the task in zone b defers every message with 4.4
    (its zone's egress is down)."""
    out = Log("smtp-out")
    a_task, b_task = TASKS["smtp-out"]
    domains = [("gmail.com", "gmail-smtp-in.l.google.com."), ("yahoo.com", "mta5.am0.yahoodns.net."),
               ("example.org", "mx.example.org.")]
    for k, at in enumerate(spread(14, 1, 36)):
        domain, mx = domains[k % len(domains)]
        if k % 2 == 0:
            out.line(at, f"to=<person{k}@{domain}>, delay=00:0{k % 10}:00, xdelay=00:01:15, mailer=esmtp, pri={30000 + k * 90}, relay={mx}, dsn=4.4.1, stat=Deferred: Connection timed out with {mx}", task=b_task)
        else:
            out.line(at, f"to=<friend{k}@{domain}>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri={30000 + k * 90}, relay={mx} [192.0.2.{k}], dsn=2.0.0, stat=Sent (OK)", task=a_task)
    return out


def zone_nat_stopped():
    """cabal-nat-1 (zone us-east-1b) stopped, cabal-nat-0 (us-east-1a) running: 'some NAT runs',
    yet smtp-out's task in zone b defers everything with 4.4 and ECS Exec times out on every task
    in zone b (their agents reach ssmmessages through that NAT); the shared queue's depth comes
    from the task in zone a."""
    tiers = {"imap": quiet("imap"), "smtp-in": quiet("smtp-in"),
             "smtp-out": tier("smtp-out", zone_b_egress_lines(), [58, 58])}
    zoned(tiers, hung={t for t, z in ZONE_OF.items() if z == "us-east-1b"})
    nat_record = two_zone_nat("i-0b1c2d3e4f5a60719", "stopped", "eni-0b0b0b0b0b0b0b0b0",
                              "eni-0b0b0b0b0b0b0b0b0", "active")
    return snapshot(tiers, nat_record, dnsbl())


def blackhole_after_replacement():
    """cabal-nat-1 was replaced by hand: the new instance runs in zone us-east-1b with a new
    interface, but the zone's default route still names the old interface: a blackhole."""
    tiers = {"imap": quiet("imap"), "smtp-in": quiet("smtp-in"),
             "smtp-out": tier("smtp-out", zone_b_egress_lines(), [58, 58])}
    zoned(tiers, hung={t for t, z in ZONE_OF.items() if z == "us-east-1b"})
    nat_record = two_zone_nat("i-0c9d8e7f6a5b40321", "running", "eni-0c0c0c0c0c0c0c0c0",
                              "eni-0b0b0b0b0b0b0b0b0", "blackhole")
    return snapshot(tiers, nat_record, dnsbl())


def spamhaus_refusing():
    """4.7 deferrals spread thin and short across providers (greylisting), checked from inside
    AWS: Spamhaus answers 127.255.255.254 (query through a public or cloud resolver refused), so
    zen.spamhaus.org stays unknown, never clean, and the summary says how to get an answer."""
    out = Log("smtp-out")
    hosts = [("example.org", "mx.example.org. [198.51.100.25]"), ("example.net", "mail.example.net. [198.51.100.80]"),
             ("example.com", "mx1.example.com. [192.0.2.25]"), ("cabal.example", "mx.cabal.example. [192.0.2.40]")]
    for k, at in enumerate(spread(25, 2, 24)):
        domain, relay = hosts[k % len(hosts)]
        out.line(at, f"to=<member{k}@{domain}>, delay=00:0{k % 9}:05, xdelay=00:00:01, mailer=esmtp, pri={60000 + k * 30}, relay={relay}, dsn=4.7.1, stat=Deferred: 450 4.7.1 Service unavailable, try again later")
    tiers = {"imap": quiet("imap"), "smtp-in": quiet("smtp-in"), "smtp-out": tier("smtp-out", out, [12, 12])}
    answers = dnsbl()
    answers[NAT_IP]["zen.spamhaus.org"] = ["127.255.255.254"]
    return snapshot(tiers, nat(), answers)

def check_records(tier_name, probe, outputs):
    """The follow-up checks' records (exec[].probe egress, relay, local) of a tier's tasks."""
    return [{"task": task, "probe": probe, "output": output, "exit_status": 0, "error": None}
            for task, output in zip(TASKS[tier_name], outputs)]


def dns_failing_inside_smtp_out():
    out = Log("smtp-out")
    domains = ["gmail.com", "yahoo.com", "example.org", "icloud.com", "outlook.com"]
    for k, at in enumerate(spread(18, 1, 44)):
        domain = domains[k % len(domains)]
        if k % 2 == 0:
            out.line(at, f"to=<person{k}@{domain}>, delay=00:0{k % 10}:30, xdelay=00:00:00, mailer=esmtp, pri={30000 + k * 90}, relay={domain}, dsn=4.4.3, stat=Deferred: Name server timeout")
        else:
            out.line(at, f"to=<person{k}@{domain}>, delay=00:0{k % 10}:10, xdelay=00:00:00, mailer=esmtp, pri={30000 + k * 90}, relay={domain}, dsn=4.4.3, stat=Deferred: {domain}: host name lookup failure")
    smtp_out = tier("smtp-out", out, [58, 58])
    smtp_out["exec"] += check_records("smtp-out", "egress", [
        "dns=failed [Errno -3] Temporary failure in name resolution\r\ntcp=unknown\r\n"] * 2)
    tiers = {"imap": quiet("imap"), "smtp-in": quiet("smtp-in"), "smtp-out": smtp_out}
    return snapshot(tiers, nat(), dnsbl())


def smtp_in_relay_refused():
    inbound = Log("smtp-in")
    for k, at in enumerate(spread(22, 1, 52)):
        user = ["chris", "dana", "eli", "fern"][k % 4]
        inbound.line(at, f"to=<{user}@cabal.example>, delay=00:{k % 20:02d}:01, xdelay=00:00:00, mailer=relay, pri={30000 + k * 60}, relay=imap.cabal.internal. [10.0.1.23], dsn=4.0.0, stat=Deferred: Connection refused by imap.cabal.internal.", pid=455)
    smtp_in = tier("smtp-in", inbound, [29, 29])
    smtp_in["exec"] += check_records("smtp-in", "relay", [
        "dns=ok 10.0.1.23\r\ntcp=failed [Errno 111] Connection refused\r\n"] * 2)
    imap = quiet("imap")
    imap["exec"] += check_records("imap", "local", [
        "spool=127.0.0.1:/ 9007199254739968 52428800 9007199202311168 1% /home\r\nprocmail=executable\r\n"])
    tiers = {"imap": imap, "smtp-in": smtp_in, "smtp-out": quiet("smtp-out")}
    return snapshot(tiers, nat(), dnsbl())


def imap_spool_not_mounted():
    imap = Log("imap")
    for k, at in enumerate(spread(26, 1, 30)):
        user = ["chris", "dana", "eli"][k % 3]
        imap.line(at, f"to=<{user}@cabal.example>, delay=00:{k % 25:02d}:02, xdelay=00:00:01, mailer=local, pri={30000 + k * 90}, dsn=4.0.0, stat=Deferred: local mailer (/usr/bin/procmail) exited with EX_CANTCREAT", pid=301)
    imap_tier = tier("imap", imap, [30])
    imap_tier["exec"] += check_records("imap", "local", [
        "spool=overlay 30832548 29905000 927548 97% /\r\nprocmail=executable\r\n"])
    tiers = {"imap": imap_tier, "smtp-in": quiet("smtp-in"), "smtp-out": quiet("smtp-out")}
    return snapshot(tiers, nat(), dnsbl())


def greylisting_recurring():
    """Greylisting as in spamhaus-refusing, but the ledger holds two earlier greylisting episodes
    of the alert this week (recorded as the snapshot's history), and bounces rise in the later
    half of the window: not transient, and said."""
    out = Log("smtp-out")
    hosts = [("example.org", "mx.example.org. [198.51.100.25]"), ("example.net", "mail.example.net. [198.51.100.80]"),
             ("example.com", "mx1.example.com. [192.0.2.25]"), ("cabal.example", "mx.cabal.example. [192.0.2.40]")]
    for k, at in enumerate(spread(25, 2, 24)):
        domain, relay = hosts[k % len(hosts)]
        out.line(at, f"to=<member{k}@{domain}>, delay=00:0{k % 9}:05, xdelay=00:00:01, mailer=esmtp, pri={60000 + k * 30}, relay={relay}, dsn=4.7.1, stat=Deferred: 450 4.7.1 Service unavailable, try again later")
    for k, at in enumerate(spread(12, 1, 7)):
        domain, relay = hosts[k % len(hosts)]
        out.line(at, f"to=<gone{k}@{domain}>, delay=00:00:02, xdelay=00:00:01, mailer=esmtp, pri={30000 + k * 30}, relay={relay}, dsn=5.1.1, stat=User unknown")
    tiers = {"imap": quiet("imap"), "smtp-in": quiet("smtp-in"), "smtp-out": tier("smtp-out", out, [12, 12])}
    record = snapshot(tiers, nat(), dnsbl())
    record["history"] = {"since": rfc3339(CAPTURED - dt.timedelta(days=7)), "episodes": 3,
                         "by_action": {"greylisting-transient": 2, "remote-congestion": 1}}
    return record


INCIDENTS = {
    "greylist-storm-one-provider": (greylist_storm, "SendmailDeferredSpike",
        {"offending_tier": "smtp-out", "dsn_class": "4.7", "nat_state": "running",
         "action": "blocklist-check", "confidence": "high",
         "next_command": "dig +short 7.113.0.203.zen.spamhaus.org"}),
    "nat-stopped-4.4-wave": (nat_stopped, "SendmailDeferredSpike",
        {"offending_tier": "smtp-out", "dsn_class": "4.4", "nat_state": "stopped",
         "action": "nat-replace", "confidence": "high",
         "next_command": "aws ec2 start-instances --instance-ids i-0a1b2c3d4e5f60718"}),
    "imap-local-delivery-failing": (imap_local_delivery, "SendmailDeferredSpike",
        {"offending_tier": "imap", "dsn_class": "4.0", "nat_state": "running",
         "action": "imap-local-delivery", "confidence": "high",
         "next_command": 'aws ecs execute-command --cluster cabal-mail --task 9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5 --container imap --interactive --command "/bin/sh"'}),
    "smtp-in-cannot-relay-to-imap": (smtp_in_relay, "SendmailDeferredSpike",
        {"offending_tier": "smtp-in", "dsn_class": "4.4", "nat_state": "running",
         "action": "inbound-relay", "confidence": "high",
         "next_command": 'aws ecs execute-command --cluster cabal-mail --task 1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6 --container smtp-in --interactive --command "/bin/sh"'}),
    "remote-congestion": (remote_congestion, "SendmailDeferredSpike",
        {"offending_tier": "smtp-out", "dsn_class": "4.3", "nat_state": "running",
         "action": "remote-congestion", "confidence": "high",
         "next_command": 'aws ecs execute-command --cluster cabal-mail --task 3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8 --container smtp-out --interactive --command "mailq"'}),
    "spike-already-over": (spike_over, "SendmailDeferredSpike",
        {"offending_tier": "none", "dsn_class": None, "nat_state": "running",
         "action": "investigate", "confidence": "high",
         "next_command": "aws logs tail /ecs/cabal-smtp-out --since 30m --filter-pattern '\"stat=Deferred\"'"}),
    "bounced-address-map-stale": (address_map_stale, "SendmailBouncedSpike",
        {"offending_tier": "smtp-in", "dsn_class": "5.1", "nat_state": "running",
         "action": "address-map-stale", "confidence": "high",
         "next_command": "aws ecs update-service --cluster cabal-mail --service cabal-smtp-in --force-new-deployment"}),
    "queue-growing-logs-stalled": (logs_stalled, "SendmailDeferredSpike",
        {"offending_tier": "smtp-out", "dsn_class": "4.4", "nat_state": "running",
         "action": "nat-replace", "confidence": "medium"},
        ["smtp-out's logs stopped 23 min ago; the queue holds 63",
         "check egress (the NAT of its tasks' zones) first"]),
    "smtp-in-shared-queue": (smtp_in_shared_queue, "SendmailDeferredSpike",
        {"offending_tier": "none", "dsn_class": None, "nat_state": "running",
         "action": "investigate", "confidence": "high"},
        ["the spike has passed"]),
    "bounced-dsn5-deferrals": (bounced_dsn5_deferrals, "SendmailBouncedSpike",
        {"offending_tier": "none", "dsn_class": None, "nat_state": "running",
         "action": "investigate", "confidence": "high",
         "next_command": "aws logs tail /ecs/cabal-smtp-out --since 30m --filter-pattern '\"dsn=5\"'"},
        ["Deferred, not bounced, though they carry dsn=5 from an earlier recipient (the alert counts them): smtp-out 18."]),
    "spamhaus-refusing": (spamhaus_refusing, "SendmailDeferredSpike",
        {"offending_tier": "smtp-out", "dsn_class": "4.7", "nat_state": "running",
         "action": "greylisting-transient", "confidence": "medium"},
        ["zen.spamhaus.org refused the lookup of 203.0.113.7 (127.255.255.254)",
         "Data Query Service key"]),
    "zone-nat-stopped-exec-timeouts": (zone_nat_stopped, "SendmailDeferredSpike",
        {"offending_tier": "smtp-out", "dsn_class": "4.4", "nat_state": "degraded",
         "action": "nat-replace", "confidence": "medium",
         "next_command": "aws ec2 start-instances --instance-ids i-0b1c2d3e4f5a60719"},
        ["zone us-east-1b's egress is broken (NAT i-0b1c2d3e4f5a60719 (cabal-nat-1) is stopped)",
         "all 18 of smtp-out's 4.4 deferrals come from tasks behind it",
         "ECS Exec failed on smtp-in task 2b3c4d5e, smtp-out task 4d5e6f7a behind zone us-east-1b"]),
    "blackhole-route-after-nat-replacement": (blackhole_after_replacement, "SendmailDeferredSpike",
        {"offending_tier": "smtp-out", "dsn_class": "4.4", "nat_state": "degraded",
         "action": "nat-replace", "confidence": "medium",
         "next_command": "aws ec2 replace-route --route-table-id rtb-0b2b2b2b2b2b2b2b2 --destination-cidr-block 0.0.0.0/0 --instance-id i-0c9d8e7f6a5b40321"},
        ["the default route of rtb-0b2b2b2b2b2b2b2b2 is a blackhole: its target eni-0b0b0b0b0b0b0b0b0 is gone",
         "point the zone's default route at its running NAT"]),
    "dns-failing-inside-smtp-out": (dns_failing_inside_smtp_out, "SendmailDeferredSpike",
        {"offending_tier": "smtp-out", "dsn_class": "4.4", "nat_state": "running",
         "action": "outbound-dns", "confidence": "high",
         "next_command": 'aws ecs execute-command --cluster cabal-mail --task 3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8 --container smtp-out --interactive --command "/bin/sh"'},
        ["gmail-smtp-in.l.google.com does not resolve inside smtp-out tasks 3c4d5e6f, 4d5e6f7a ([Errno -3] Temporary failure in name resolution)",
         "are DNS failures, not the NAT"]),
    "smtp-in-relay-check-refused": (smtp_in_relay_refused, "SendmailDeferredSpike",
        {"offending_tier": "smtp-in", "dsn_class": "4.4", "nat_state": "running",
         "action": "inbound-relay", "confidence": "high",
         "next_command": 'aws ecs execute-command --cluster cabal-mail --task 9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5 --container imap --interactive --command "/bin/sh"'},
        ["imap.cabal.internal resolves to 10.0.1.23 but refuses port 25 ([Errno 111] Connection refused) from smtp-in tasks 1a2b3c4d, 2b3c4d5e"]),
    "imap-spool-not-mounted": (imap_spool_not_mounted, "SendmailDeferredSpike",
        {"offending_tier": "imap", "dsn_class": "4.0", "nat_state": "running",
         "action": "imap-local-delivery", "confidence": "high"},
        ["the mail spool /home is 97% full (905 MiB free, on /) in task 9f1c2d3e",
         "/home is not a mounted filesystem (EFS) in task 9f1c2d3e"]),
    "greylisting-third-time-this-week": (greylisting_recurring, "SendmailDeferredSpike",
        {"offending_tier": "smtp-out", "dsn_class": "4.7", "nat_state": "running",
         "action": "blocklist-check", "confidence": "high"},
        ["greylisting episode 3 in 7 days: recurring greylisting is not transient",
         "Bounces are rising in the same window: 0 in its first half, 7 in its second (smtp-out 7)",
         "The ledger holds 3 earlier SendmailDeferredSpike episodes from the last 7 days, 0 of them blocklist-check."]),
}


def main():
    for name, (build, alertname, verdict, *said) in INCIDENTS.items():
        folder = os.path.join(HERE, name)
        os.makedirs(folder, exist_ok=True)
        severity = "critical" if "Bounced" in alertname else "warning"
        files = {"payload.json": payload(alertname, severity), "snapshot.json": build(),
                 "expected.json": {"verdict": verdict, **({"summary_contains": said[0]} if said else {})}}
        for file, content in files.items():
            with open(os.path.join(folder, file), "w") as f:
                json.dump(content, f, indent=1)
                f.write("\n")


if __name__ == "__main__":
    main()
