#!/usr/bin/env python3
"""Writes the IMAPAuthFailureSpike example incidents of examples/ (imap-auth-*): the payload, the
replay snapshot (the imap tier's log_events in the imap-login formats a real Dovecot 2.3 writes,
tests/fixtures/dovecot/recorded-imap-login.log; network_interfaces; parameters; the imap task's
started_at) and the expected verdict. Rerun after changing an incident:

    python3 examples/generate_imap.py

Deterministic. Addresses are in Cabalmail's VPC range (10.64.0.0/16); names are made up.
"""
import datetime as dt
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURED = dt.datetime(2026, 12, 2, 4, 0, 0, tzinfo=dt.timezone.utc)
STARTS = CAPTURED - dt.timedelta(minutes=6)
LAMBDA_A, LAMBDA_B = "10.64.11.23", "10.64.12.41"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5"


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(t):
    return int(t.timestamp() * 1000)


def stamp(t):
    return t.strftime("%Y-%m-%d %H:%M:%S ")


def session(n):
    return f"s{n:06d}AAAB"


def ok(t, user, rip, n):
    return f"{stamp(t)}imap-login: Info: Login: user=<{user}>, method=PLAIN, rip={rip}, lip=10.64.1.5, mpid={1000 + n}, TLS, session=<{session(n)}>"


def failed(t, user, rip, n):
    return f"{stamp(t)}imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 2 secs): user=<{user}>, method=PLAIN, rip={rip}, lip=10.64.1.5, TLS, session=<{session(n)}>"


def plaintext(t, user, rip, n):
    return f"{stamp(t)}imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 0 secs): user=<{user}>, rip={rip}, lip=10.64.1.5, session=<{session(n)}>"


def internal(t, user, rip, n):
    return f"{stamp(t)}imap-login: Info: Disconnected: Internal login failure (pid=41 id=1): user=<{user}>, method=PLAIN, rip={rip}, lip=10.64.1.5, mpid={1000 + n}, TLS, session=<{session(n)}>"


def events(lines):
    out = []
    for i, (t, text) in enumerate(lines):
        out.append({"timestamp": ms(t), "message": text, "log_stream": "imap/imap/9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5"})
    return out


def at(i):
    return STARTS - dt.timedelta(minutes=5) + dt.timedelta(seconds=10 * i)


def lambda_eni(n, fn):
    return {"id": f"eni-0{n}a1b2c3d4e5f6a7b8", "interface_type": "lambda",
            "description": f"AWS Lambda VPC ENI-{fn}-1a2b3c4d", "requester_id": f"AROA1234567890EXAMPL:{fn}",
            "groups": ["cabal-lambda-sg"]}


def payload():
    labels = {"alertname": "IMAPAuthFailureSpike", "severity": "warning"}
    annotations = {
        "summary": "Dovecot auth failures > 25 in 5 minutes on the imap tier",
        "runbook_url": "https://github.com/cabalmail/cabal-infra/blob/main/docs/operations/runbooks/imap-auth-failure-spike.md",
    }
    return {"receiver": "cabal-triage", "status": "firing",
            "alerts": [{"status": "firing", "labels": labels, "annotations": annotations,
                        "startsAt": rfc3339(STARTS), "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://prometheus:9090/graph?g0.expr=aws_cabalmail_logs_imap_auth_failures_sum",
                        "fingerprint": "a1b2c3d4e5f60718"}],
            "groupLabels": {"alertname": "IMAPAuthFailureSpike", "severity": "warning"},
            "commonLabels": labels, "commonAnnotations": annotations,
            "externalURL": "http://alertmanager:9093", "version": "4",
            "groupKey": "{}:{alertname=\"IMAPAuthFailureSpike\", severity=\"warning\"}", "truncatedAlerts": 0}


def snapshot(lines, interfaces, modified, started):
    return {"captured_at": rfc3339(CAPTURED),
            "window": {"from": rfc3339(STARTS - dt.timedelta(minutes=15)), "to": rfc3339(CAPTURED)},
            "tiers": {"imap": {"tasks": [TASK_ARN],
                               "task_details": [{"arn": TASK_ARN, "id": TASK_ARN.rsplit("/", 1)[1], "last_status": "RUNNING",
                                                 "exec_enabled": True, "containers": [{"name": "imap", "last_status": "RUNNING", "exec_agent": "RUNNING"}],
                                                 "started_at": rfc3339(started)}],
                               "log_events": events(lines), "log_error": None}},
            "network_interfaces": interfaces,
            "parameters": {"/cabal/master_password": {"last_modified": rfc3339(modified), "version": 7}}}


ENIS = {LAMBDA_A: lambda_eni(1, "cabal-list_messages"), LAMBDA_B: lambda_eni(2, "cabal-fetch_message")}
LONG_AGO = CAPTURED - dt.timedelta(days=20)
TASK_START = CAPTURED - dt.timedelta(days=3)
INCIDENTS = {}

# The master password was rotated in SSM after the task started: every Lambda login fails, and
# Dovecot logs the master user's own name.
lines = [(at(i), failed(at(i), "admin", [LAMBDA_A, LAMBDA_B][i % 2], i)) for i in range(32)]
INCIDENTS["imap-auth-master-password-rotated"] = (
    snapshot(lines, ENIS, CAPTURED - dt.timedelta(hours=2), TASK_START),
    {"verdict": {"offending_tier": "imap", "cause": "master-credential", "action": "master-password-sync",
                 "severity_hint": "critical", "confidence": "high"},
     "summary_contains": ["after the imap task started", "no login succeeds"]},
)

# One Cognito user has no OS account: the master login for it fails, everyone else works.
lines = []
for i in range(30):
    if i % 3 == 0:
        lines.append((at(i), ok(at(i), ["dana", "erin", "frank"][i % 3 // 1 % 3], LAMBDA_A, i)))
    else:
        lines.append((at(i), internal(at(i), "carol", LAMBDA_B, i)))
INCIDENTS["imap-auth-one-account-missing"] = (
    snapshot(lines, ENIS, LONG_AGO, TASK_START),
    {"verdict": {"offending_tier": "imap", "cause": "account-missing", "action": "user-sync",
                 "severity_hint": "warning", "confidence": "high"},
     "summary_contains": ["user sync"]},
)

# Something in the VPC that is not a Lambda guesses names; Lambda logins keep working.
guesser = "10.64.40.17"
names = ["admin", "root", "test", "info", "postmaster", "support", "sales", "webmaster", "backup", "office"]
lines = []
for i in range(36):
    if i % 4 == 0:
        lines.append((at(i), ok(at(i), "dana", LAMBDA_A, i)))
    else:
        lines.append((at(i), failed(at(i), names[i % len(names)], guesser, i)))
interfaces = dict(ENIS)
interfaces[guesser] = {"id": "eni-0c9d8e7f6a5b4c3d2", "interface_type": "interface",
                       "description": "", "requester_id": None, "groups": ["cabal-ecs-instance-sg"]}
INCIDENTS["imap-auth-non-lambda-source-guessing"] = (
    snapshot(lines, interfaces, LONG_AGO, TASK_START),
    {"verdict": {"offending_tier": "imap", "cause": "in-vpc-source", "action": "compromise-investigation",
                 "severity_hint": "critical", "confidence": "high"},
     "summary_contains": ["10.64.40.17", "not a Lambda ENI", "guessing 10 user names"]},
)

# A consumer regressed to LOGIN before STARTTLS: every attempt is refused before auth.
lines = [(at(i), plaintext(at(i), f"{['dana', 'erin', 'frank'][i % 3]}*admin", LAMBDA_A, i)) for i in range(30)]
INCIDENTS["imap-auth-plaintext-regression"] = (
    snapshot(lines, ENIS, LONG_AGO, TASK_START),
    {"verdict": {"offending_tier": "imap", "cause": "plaintext-client", "action": "consumer-fix",
                 "severity_hint": "critical", "confidence": "high"},
     "summary_contains": ["STARTTLS"]},
)


def write(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


for name, (snap, expected) in INCIDENTS.items():
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "payload.json"), payload())
    write(os.path.join(d, "snapshot.json"), snap)
    write(os.path.join(d, "expected.json"), expected)
