#!/usr/bin/env python3
"""Time of one moto Query on a sparse index of a large table, with and without the harness's index.

Starts tests/support/moto_serialized.py twice on free loopback ports, once as the tests run it
and once with MOTO_INDEXED_QUERY=0 (moto's own Query, which sorts the whole table per query),
fills both with ITEMS episode-like items (one page of alert text each; every item in the `recent`
index, one in 20 in the `queue` index, as a storm's backlog leaves them), then times QUERIES
queries of the kinds the ledger makes: a `queue` page (`qpk = :p AND qsk <= :now`, Limit 10),
and a `recent` page (newest first, Limit 25). Prints the mean ms per query for each server and
the ratio, measured in the same run.

Usage: bench/moto-index-query.py [ITEMS] [QUERIES]
"""

import os
import socket
import subprocess
import sys
import time

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "tests", "support", "moto_serialized.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(indexed: bool):
    port = free_port()
    env = dict(os.environ, MOTO_INDEXED_QUERY="1" if indexed else "0")
    child = subprocess.Popen(
        [sys.executable, SERVER, "127.0.0.1", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="test-secret",
        config=Config(retries={"max_attempts": 1}, read_timeout=300, max_pool_connections=8),
    )
    deadline = time.time() + 60
    while True:
        try:
            client.list_tables()
            return child, client
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def fill(client, items: int) -> None:
    def index(name, h, r, projection):
        return {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": h, "KeyType": "HASH"},
                {"AttributeName": r, "KeyType": "RANGE"},
            ],
            "Projection": projection,
        }

    names = ["pk", "sk", "qpk", "qsk", "lpk", "lsk"]
    client.create_table(
        TableName="ledger",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in names],
        GlobalSecondaryIndexes=[
            index("queue", "qpk", "qsk", {"ProjectionType": "KEYS_ONLY"}),
            index(
                "recent",
                "lpk",
                "lsk",
                {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["state"]},
            ),
        ],
    )
    text = "x" * 2000
    for start in range(0, items, 25):
        batch = []
        for n in range(start, min(start + 25, items)):
            item = {
                "pk": {"S": f"E#{n:08}"},
                "sk": {"S": "E"},
                "lpk": {"S": f"L#{n % 8}"},
                "lsk": {"S": f"{n:013}"},
                "state": {"S": "triaged"},
                "alert": {"S": text},
            }
            if n % 20 == 0:
                item["qpk"] = {"S": f"J#{n % 8}"}
                item["qsk"] = {"S": f"{n:013}"}
            batch.append({"PutRequest": {"Item": item}})
        client.batch_write_item(RequestItems={"ledger": batch})


def time_queries(client, queries: int) -> float:
    started = time.perf_counter()
    for n in range(queries):
        if n % 2 == 0:
            client.query(
                TableName="ledger",
                IndexName="queue",
                KeyConditionExpression="qpk = :p AND qsk <= :now",
                ExpressionAttributeValues={
                    ":p": {"S": f"J#{n % 8}"},
                    ":now": {"S": "9999999999999"},
                },
                Limit=10,
            )
        else:
            client.query(
                TableName="ledger",
                IndexName="recent",
                KeyConditionExpression="lpk = :p",
                ExpressionAttributeValues={":p": {"S": f"L#{n % 8}"}},
                ScanIndexForward=False,
                Limit=25,
            )
    return (time.perf_counter() - started) * 1000 / queries


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    queries = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    results = {}
    for indexed in (False, True):
        child, client = start(indexed)
        try:
            fill(client, items)
            time_queries(client, 2)
            results[indexed] = time_queries(client, queries)
        finally:
            child.terminate()
            child.wait()
    print(
        f"moto Query at {items} items ({queries} queries): moto's own {results[False]:.1f} ms, "
        f"indexed {results[True]:.2f} ms per query; ratio {results[False] / results[True]:.0f}x"
    )


if __name__ == "__main__":
    main()
