#!/usr/bin/env python3
"""DynamoDB requests per second that a moto server answers (the storm tests' bottleneck).

Starts tests/support/moto_serialized.py (or another server script given as SERVER) on a free
loopback port, creates a table, and for SECONDS sends conditional PutItems, consistent GetItems
and conditional UpdateItems from THREADS client threads (boto3, keep-alive connections), the mix
the DynamoDB ledger makes. Prints one line: requests, seconds, requests/s, and the server's CPU time per request (user + system, from /proc; steadier than
requests/s on a busy machine, and 1000 / that is what one core of moto can serve).

Usage: bench/moto-requests.py [SECONDS] [THREADS] [SERVER]
"""

import os
import socket
import subprocess
import sys
import threading
import time

import boto3
from botocore.config import Config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    here = os.path.dirname(os.path.abspath(__file__))
    server = (
        sys.argv[3]
        if len(sys.argv) > 3
        else os.path.join(here, "..", "tests", "support", "moto_serialized.py")
    )
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, server, "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIDTEST",
            aws_secret_access_key="test-secret",
            config=Config(max_pool_connections=threads * 2, retries={"max_attempts": 1}),
        )
        deadline = time.time() + 60
        while True:
            try:
                client.list_tables()
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        client.create_table(
            TableName="bench",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        counts = [0] * threads
        stop = time.time() + seconds

        def work(index: int) -> None:
            n = 0
            while time.time() < stop:
                key = {"pk": {"S": f"EP#{index}-{n}"}, "sk": {"S": "EP"}}
                client.put_item(
                    TableName="bench",
                    Item={**key, "version": {"N": "0"}, "body": {"S": "x" * 800}},
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": "pk"},
                )
                client.get_item(TableName="bench", Key=key, ConsistentRead=True)
                client.update_item(
                    TableName="bench",
                    Key=key,
                    UpdateExpression="SET #version = :next",
                    ConditionExpression="#version = :expected",
                    ExpressionAttributeNames={"#version": "version"},
                    ExpressionAttributeValues={":next": {"N": "1"}, ":expected": {"N": "0"}},
                )
                counts[index] += 3
                n += 1

        cpu_before = cpu_seconds(child.pid)
        started = time.time()
        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.time() - started
        cpu = cpu_seconds(child.pid) - cpu_before
        total = sum(counts)
        print(
            f"moto: {total} requests in {elapsed:.1f} s: {total / elapsed:.1f} requests/s "
            f"({threads} threads); server CPU {1000 * cpu / total:.2f} ms/request "
            f"(one core: {total / cpu:.0f} requests/s)"
        )
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


if __name__ == "__main__":
    main()
