#!/usr/bin/env python3
"""Checks that moto_indexed_query.py leaves moto's answers unchanged, on random operations.

Starts two servers on free loopback ports: tests/support/moto_serialized.py (moto with the
harness's changes, the indexed query among them) and moto's own unchanged server
(`python -m moto.server`). Creates the same tables on both, then sends both the same random
sequence of PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems (some failing
their conditions, so that moto rolls the transaction back) and Query requests, and compares
every answer: items and their order, Count, ScannedCount, LastEvaluatedKey, and the error code
and message of failed requests. Queries follow LastEvaluatedKey page by page, and some start
from a key of their own.

The table is the ledger's layout (string keys; three sparse indexes, two KEYS_ONLY and one
INCLUDE), with few distinct index key values, so that partitions have ties and items move in and
out of indexes; some items carry 150 KB, so that moto's 1 MB page limit ends some pages. A second
table with a numeric index range key takes moto's own query path.

Exits 0 when every answer was the same, 1 otherwise (printing the first differences).
Usage: moto_query_equivalence.py [OPERATIONS] [SEED]
"""

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = "ledger"
NUMERIC = "numeric"
INDEXES = {
    "queue": ("qpk", "qsk"),
    "outbox": ("opk", "osk"),
    "recent": ("lpk", "lsk"),
}
HASHES = ["J#0", "J#1", "J#2"]
RANGES = ["0001", "0002", "0002#x", "0003", "0100", "a", "é", "zz"]
COMPARISONS = ["=", "<", "<=", ">", ">=", "BETWEEN", "begins_with"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command):
    port = free_port()
    if "moto.server" in command:
        arguments = command + ["-H", "127.0.0.1", "-p", str(port)]
    else:
        arguments = command + ["127.0.0.1", str(port)]
    child = subprocess.Popen(
        arguments,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="test-secret",
        config=Config(retries={"max_attempts": 1}, read_timeout=120),
    )
    deadline = time.time() + 60
    while True:
        try:
            client.list_tables()
            return child, client, port
        except Exception:
            if time.time() > deadline or child.poll() is not None:
                raise RuntimeError(f"server {command} did not start")
            time.sleep(0.2)


def create_tables(client):
    definitions = [{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk")]
    indexes = []
    for name, (h, r) in INDEXES.items():
        definitions += [
            {"AttributeName": h, "AttributeType": "S"},
            {"AttributeName": r, "AttributeType": "S"},
        ]
        projection = (
            {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["state", "blob"]}
            if name == "recent"
            else {"ProjectionType": "KEYS_ONLY"}
        )
        indexes.append(
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": h, "KeyType": "HASH"},
                    {"AttributeName": r, "KeyType": "RANGE"},
                ],
                "Projection": projection,
            }
        )
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=definitions,
        GlobalSecondaryIndexes=indexes,
    )
    client.create_table(
        TableName=NUMERIC,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "qpk", "AttributeType": "S"},
            {"AttributeName": "qsk", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "queue",
                "KeySchema": [
                    {"AttributeName": "qpk", "KeyType": "HASH"},
                    {"AttributeName": "qsk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


class Generator:
    """Random requests over small key domains, so that they collide."""

    def __init__(self, seed):
        self.random = random.Random(seed)

    def key(self):
        r = self.random
        return {"pk": {"S": f"E#{r.randrange(40):02}"}, "sk": {"S": r.choice(["E", "D#1", "D#2"])}}

    def index_value(self, attribute, numeric=False):
        r = self.random
        if attribute.endswith("pk"):
            return {"S": r.choice(HASHES)}
        if numeric:
            return {"N": str(r.choice([1, 2, 2, 3, 10, 100]))}
        return {"S": r.choice(RANGES)}

    def item(self, numeric=False):
        r = self.random
        item = dict(self.key())
        item["state"] = {"S": r.choice(["new", "triaged", "failed"])}
        if r.random() < 0.08:
            item["blob"] = {"S": "x" * 150_000}
        attributes = ["qpk", "qsk"] if numeric else [a for pair in INDEXES.values() for a in pair]
        for attribute in attributes:
            if r.random() < 0.6:
                item[attribute] = self.index_value(attribute, numeric and attribute == "qsk")
        return item

    def write(self):
        r = self.random
        choice = r.random()
        if choice < 0.35:
            request = {"TableName": TABLE, "Item": self.item()}
            if r.random() < 0.3:
                request["ConditionExpression"] = "attribute_not_exists(pk)"
            return "put_item", request
        if choice < 0.65:
            sets, removes, values = [], [], {}
            for attribute in [a for pair in INDEXES.values() for a in pair] + ["state"]:
                roll = r.random()
                if roll < 0.25:
                    sets.append(f"{attribute} = :{attribute}")
                    values[f":{attribute}"] = (
                        {"S": "moved"} if attribute == "state" else self.index_value(attribute)
                    )
                elif roll < 0.4 and attribute != "state":
                    removes.append(attribute)
            if not sets and not removes:
                sets.append("state = :state")
                values[":state"] = {"S": "touched"}
            expression = ""
            if sets:
                expression += "SET " + ", ".join(sets)
            if removes:
                expression += " REMOVE " + ", ".join(removes)
            request = {
                "TableName": TABLE,
                "Key": self.key(),
                "UpdateExpression": expression.strip(),
                "ReturnValues": "ALL_NEW",
            }
            if values:
                request["ExpressionAttributeValues"] = values
            if r.random() < 0.3:
                request["ConditionExpression"] = "attribute_exists(pk)"
            return "update_item", request
        if choice < 0.8:
            return "delete_item", {"TableName": TABLE, "Key": self.key()}
        if choice < 0.9:
            writes, keys = [], set()
            for _ in range(r.randint(1, 6)):
                if r.random() < 0.7:
                    item = self.item()
                    key = (item["pk"]["S"], item["sk"]["S"])
                    entry = {"PutRequest": {"Item": item}}
                else:
                    k = self.key()
                    key = (k["pk"]["S"], k["sk"]["S"])
                    entry = {"DeleteRequest": {"Key": k}}
                if key not in keys:
                    keys.add(key)
                    writes.append(entry)
            return "batch_write_item", {"RequestItems": {TABLE: writes}}
        operations, keys = [], set()
        for _ in range(r.randint(2, 3)):
            item = self.item()
            key = (item["pk"]["S"], item["sk"]["S"])
            if key in keys:
                continue
            keys.add(key)
            if r.random() < 0.5:
                put = {"TableName": TABLE, "Item": item}
                if r.random() < 0.4:
                    put["ConditionExpression"] = "attribute_not_exists(pk)"
                operations.append({"Put": put})
            else:
                operations.append(
                    {
                        "Update": {
                            "TableName": TABLE,
                            "Key": {"pk": item["pk"], "sk": item["sk"]},
                            "UpdateExpression": "SET qpk = :h, qsk = :r",
                            "ExpressionAttributeValues": {
                                ":h": self.index_value("qpk"),
                                ":r": self.index_value("qsk"),
                            },
                        }
                    }
                )
        return "transact_write_items", {"TransactItems": operations}

    def numeric_write(self):
        return "put_item", {"TableName": NUMERIC, "Item": self.item(numeric=True)}

    def query(self, numeric=False):
        r = self.random
        if numeric:
            index, (h, s) = "queue", ("qpk", "qsk")
        elif r.random() < 0.1:
            index, (h, s) = None, ("pk", "sk")
        else:
            index, (h, s) = r.choice(list(INDEXES.items()))
        names = {"#h": h}
        if index is None:
            values = {":h": self.key()["pk"]}
        else:
            values = {":h": self.index_value(h)}
        condition = "#h = :h"
        comparison = r.choice(COMPARISONS + [None, None])
        if comparison is not None:
            names["#s"] = s
            if index is None:
                bound = lambda: {"S": r.choice(["D#1", "D#2", "E", "A", "Z"])}  # noqa: E731
            elif numeric:
                bound = lambda: self.index_value("qsk", numeric=True)  # noqa: E731
            else:
                bound = lambda: self.index_value(s)  # noqa: E731
            if comparison == "BETWEEN":
                low, high = sorted([bound(), bound()], key=lambda v: float(v["N"]) if "N" in v else v["S"])
                values[":a"], values[":b"] = low, high
                condition += " AND #s BETWEEN :a AND :b"
            elif comparison == "begins_with":
                if numeric:
                    comparison = "="
                    values[":a"] = bound()
                    condition += " AND #s = :a"
                else:
                    values[":a"] = {"S": bound()["S"][:1]}
                    condition += " AND begins_with(#s, :a)"
            else:
                values[":a"] = bound()
                condition += f" AND #s {comparison} :a"
        request = {
            "TableName": NUMERIC if numeric else TABLE,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": r.random() < 0.5,
        }
        if index is not None:
            request["IndexName"] = index
        if r.random() < 0.75:
            request["Limit"] = r.randint(1, 8)
        if r.random() < 0.15:
            request["Select"] = "COUNT"
        elif r.random() < 0.15:
            request["FilterExpression"] = "#st = :st"
            names["#st"] = "state"
            values[":st"] = {"S": "new"}
        elif r.random() < 0.1:
            request["ProjectionExpression"] = "pk, #h"
        return request

    def start_key(self, request):
        """A start key of the query's own, not taken from an answer (sometimes odd)."""
        r = self.random
        index = request.get("IndexName")
        key = self.key()
        if index is not None:
            h, s = INDEXES[index] if request["TableName"] == TABLE else ("qpk", "qsk")
            key[h] = request["ExpressionAttributeValues"][":h"]
            if r.random() < 0.1:
                key[h] = self.index_value(h)
            key[s] = self.index_value(s, numeric=request["TableName"] == NUMERIC)
        else:
            key["pk"] = request["ExpressionAttributeValues"][":h"]
        return key


def answer(client, operation, request):
    try:
        response = getattr(client, operation)(**request)
        response.pop("ResponseMetadata", None)
        return ("ok", response)
    except ClientError as error:
        return ("error", error.response["Error"].get("Code"), error.response["Error"].get("Message"))


def main() -> int:
    operations = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    patched_env = dict(os.environ, MOTO_INDEXED_QUERY="1", MOTO_INDEXED_QUERY_VERIFY="0")
    os.environ.update(patched_env)
    patched, patched_client, patched_port = start([sys.executable, os.path.join(HERE, "moto_serialized.py")])
    plain, plain_client, _ = start([sys.executable, "-m", "moto.server"])
    differences = []
    compared = {"writes": 0, "query pages": 0, "queries": 0}
    generator = Generator(seed)
    r = generator.random

    def both(operation, request):
        first = answer(patched_client, operation, request)
        second = answer(plain_client, operation, request)
        if first != second:
            differences.append((operation, request, first, second))
        return first

    try:
        create_tables(patched_client)
        create_tables(plain_client)
        for step in range(operations):
            roll = r.random()
            if roll < 0.5:
                both(*generator.write())
                compared["writes"] += 1
            elif roll < 0.55:
                both(*generator.numeric_write())
                compared["writes"] += 1
            else:
                request = generator.query(numeric=roll > 0.95)
                compared["queries"] += 1
                if r.random() < 0.15:
                    request["ExclusiveStartKey"] = generator.start_key(request)
                for _page in range(50):
                    result = both("query", request)
                    compared["query pages"] += 1
                    if result[0] != "ok" or "LastEvaluatedKey" not in result[1]:
                        break
                    request = dict(request, ExclusiveStartKey=result[1]["LastEvaluatedKey"])
            if len(differences) >= 5:
                break
        with urllib.request.urlopen(f"http://127.0.0.1:{patched_port}/_counts") as response:
            counts = json.load(response)
    finally:
        for child in (patched, plain):
            child.terminate()
            child.wait()
    print(
        f"moto_query_equivalence: seed {seed}: {operations} operations, compared "
        f"{compared['writes']} writes, {compared['queries']} queries in "
        f"{compared['query pages']} pages; {len(differences)} differences; patched server's "
        f"query paths: {counts.get('harness Query by index', 0)} by index, "
        f"{counts.get('harness Query by moto', 0)} by moto"
    )
    for operation, request, first, second in differences[:5]:
        print(f"DIFFERENCE {operation} {request}\n  patched: {first}\n  moto:    {second}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
