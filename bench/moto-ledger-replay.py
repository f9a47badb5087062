#!/usr/bin/env python3
"""Requests/s moto answers for the DynamoDB ledger's real request mix, patched vs unpatched.

Replays a recording of the ledger's requests (JSON lines of {"target", "body"}, written by
tests/support/moto_serialized.py when MOTO_RECORD=PATH is set, e.g. during the storm test:
  MOTO_RECORD=/tmp/ledger.jsonl CABAL_TRIAGE_STORM_PAYLOADS=4 cargo nextest run --all-features \
    -E 'test(storm_two_replicas_every_episode_once)'
) against these servers, one after the other, in the same run:
  patched   tests/support/moto_serialized.py (all of the harness's changes)
  front     the same with MOTO_DIRECT_ATTRIBUTE_VALUES=0 and MOTO_ITEM_SIZE_RUNNING_TOTAL=0
            (moto's serializer walks every attribute value, and each new item re-sums its size
            at each attribute, as before moto_fast_paths.direct_attribute_values and
            items_sized_once_when_built)
  werkzeug  that and MOTO_DIRECT_DYNAMODB=0 (every request through werkzeug's WSGI path and
            Flask, as before moto_json_front.py: the harness's server before both)
  logging   the same as patched with MOTO_ACCESS_LOG=1 (the access log line per request, to a file)
  before    MOTO_FAST_PATHS=0 and MOTO_DIRECT_DYNAMODB=0 (before moto_fast_paths.py)
  plain     `python -m moto.server` (moto unchanged)
For each: creates the table by replaying the recording once (episode ids renamed), copies the
resulting items under other episode ids with BatchWriteItem until the table holds ITEMS items
(as at the end of a storm of ITEMS episodes), then replays the whole recording once more with
fresh episode ids from THREADS client threads (each keeping its connection open, as the AWS
SDKs do, where the server allows it) and times it. Prints requests/s and the server's
CPU time per request (user + system from /proc) for each, and the ratios of patched to each
other (of requests/s and of CPU per request).

Usage: bench/moto-ledger-replay.py RECORDING [ITEMS] [THREADS] [SERVERS]
  ITEMS default 10000, THREADS default 4, SERVERS default patched,front,werkzeug,logging,before,plain
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WRAPPER = os.path.join(HERE, "..", "tests", "support", "moto_serialized.py")
HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    # moto reads the region and the access key from the credential scope; it does not check
    # the signature unless IAM is enforced.
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/dynamodb/"
    "aws4_request, SignedHeaders=host;x-amz-target, Signature=0",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(name: str):
    port = free_port()
    env = dict(os.environ)
    env.pop("MOTO_RECORD", None)
    if name == "plain":
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    else:
        command = [sys.executable, WRAPPER, "127.0.0.1", str(port)]
        env["MOTO_FAST_PATHS"] = "0" if name == "before" else "1"
        env["MOTO_ACCESS_LOG"] = "1" if name == "logging" else "0"
        env["MOTO_DIRECT_DYNAMODB"] = "0" if name in ("werkzeug", "before") else "1"
        env["MOTO_DIRECT_ATTRIBUTE_VALUES"] = "0" if name in ("front", "werkzeug") else "1"
        env["MOTO_ITEM_SIZE_RUNNING_TOTAL"] = "0" if name in ("front", "werkzeug") else "1"
    # stderr to a file as the tests keep it (tests/support/moto.rs), not to /dev/null.
    log = tempfile.TemporaryFile()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env)
    deadline = time.time() + 60
    while True:
        try:
            send(port, "DynamoDB_20120810.ListTables", "{}")
            return child, port
        except OSError:
            if time.time() > deadline or child.poll() is not None:
                raise RuntimeError(f"{name} server did not start")
            time.sleep(0.2)


CONNECTIONS = threading.local()


def send(port: int, target: str, body: str):
    """One request on this thread's connection to `port`, kept open between requests as the
    AWS SDKs do (http.client opens a new one when the server closed it: werkzeug's path
    answers `Connection: close`)."""
    connections = getattr(CONNECTIONS, "by_port", None)
    if connections is None:
        connections = CONNECTIONS.by_port = {}
    connection = connections.get(port)
    if connection is None:
        connection = connections[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request(
            "POST", "/", body=body.encode(), headers=dict(HEADERS, **{"X-Amz-Target": target})
        )
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        connection.close()
        del connections[port]
        raise


def renamed(request, tag: str):
    return request["target"], request["body"].replace("ep-", f"ep-{tag}")


def replay(port: int, requests, tag: str, threads: int) -> None:
    position = [0]
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                index = position[0]
                position[0] += 1
            if index >= len(requests):
                return
            send(port, *renamed(requests[index], tag))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def fill(port: int, table: str, items: int) -> int:
    """Copies the table's items under renamed episode ids until it holds `items` items."""
    existing, start_key = [], None
    while True:
        request = {"TableName": table}
        if start_key:
            request["ExclusiveStartKey"] = start_key
        status, body = send(port, "DynamoDB_20120810.Scan", json.dumps(request))
        page = json.loads(body)
        existing += page.get("Items", [])
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            break
    texts = [json.dumps(item) for item in existing]
    count, copy = len(existing), 1
    while count < items and texts:
        batch = []
        for text in texts:
            if count + len(batch) >= items:
                break
            batch.append({"PutRequest": {"Item": json.loads(text.replace("ep-p", f"ep-c{copy:03}"))}})
        for start in range(0, len(batch), 25):
            body = json.dumps({"RequestItems": {table: batch[start : start + 25]}})
            status, answer = send(port, "DynamoDB_20120810.BatchWriteItem", body)
            if status != 200:
                raise RuntimeError(f"BatchWriteItem: {status} {answer[:300]!r}")
        count += len(batch)
        copy += 1
    return count


def measure(name: str, requests, items: int, threads: int):
    child, port = start(name)
    try:
        table = next(
            json.loads(r["body"])["TableName"]
            for r in requests
            if r["target"].endswith(".CreateTable")
        )
        replay(port, requests, "p", 1)
        filled = fill(port, table, items)
        measured = [r for r in requests if not r["target"].endswith(".CreateTable")]
        cpu_before = cpu_seconds(child.pid)
        started = time.time()
        replay(port, measured, "z", threads)
        elapsed = time.time() - started
        cpu = cpu_seconds(child.pid) - cpu_before
        rate = len(measured) / elapsed
        print(
            f"{name:8} {len(measured)} requests at {filled} items in {elapsed:.1f} s: "
            f"{rate:.1f} requests/s; server CPU {1000 * cpu / len(measured):.2f} ms/request",
            flush=True,
        )
        return rate, cpu / len(measured)
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    requests = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
    items = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    servers = (sys.argv[4] if len(sys.argv) > 4 else "patched,front,werkzeug,logging,before,plain").split(",")
    results = {name: measure(name, requests, items, threads) for name in servers}
    for other in ("front", "werkzeug", "before", "plain"):
        if "patched" in results and other in results:
            (rate, cpu), (other_rate, other_cpu) = results["patched"], results[other]
            print(
                f"ratio patched/{other}: requests/s {rate / other_rate:.2f}, "
                f"server CPU per request {cpu / other_cpu:.2f}"
            )


if __name__ == "__main__":
    main()
