#!/usr/bin/env python3
"""Checks that the harness's moto (moto_serialized.py, with moto_fast_paths.py and
moto_indexed_query.py) answers the DynamoDB ledger's requests exactly as unchanged moto does.

Starts both servers on free loopback ports and sends each the same raw HTTP requests, one at a
time, comparing the HTTP status, the parsed JSON body and the headers (names and order; values
but the date, the request id and what depends on the body) of every answer (after removing the
timestamps of table descriptions, which differ between two servers by construction):

1. A recording of the ledger's real requests (JSON lines of {"target", "body"}, as written by
   moto_serialized.py with MOTO_RECORD=PATH; gzip allowed), by default
   tests/support/ledger-requests.jsonl.gz: from a 500-episode storm test run, the table's setup
   and every request of the first 75 episodes it created, from the put to the last delivery
   record, with a third of its queries (CreateTable, DescribeTable, UpdateTimeToLive,
   conditional PutItem and UpdateItem with ReturnValues and ReturnValuesOnConditionCheckFailure,
   outcome records that also set two `refs` map keys, Query on the three indexes, GetItem,
   BatchGetItem).
2. Random requests shaped like the ledger's (src/ledger/dynamodb/), over few episodes so that
   they collide: PutItem with attribute_not_exists and ReturnValuesOnConditionCheckFailure;
   GetItem (consistent, sometimes projected); UpdateItem with SET of scalars, index keys and
   nested maps, REMOVE, ADD, a version condition that holds or fails, every ReturnValues and
   ReturnValuesOnConditionCheckFailure; Query on each index with Limit, both directions,
   Select=COUNT and ProjectionExpression, followed page by page; BatchGetItem (projected or
   not); BatchWriteItem puts and deletes; DescribeTable; UpdateTimeToLive; and requests moto
   refuses (bad expressions, missing table), whose error answers are compared too.

Exits 0 when every answer was the same, 1 otherwise (printing the first differences).
Usage: moto_ledger_equivalence.py [OPERATIONS] [SEED] [RECORDING]
"""

import collections
import gzip
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = "ledger"
HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/dynamodb/"
    "aws4_request, SignedHeaders=host;x-amz-target, Signature=0",
}
PREFIX = "DynamoDB_20120810."
INDEXES = {
    "queue": ("queue_pk", "queue_sk", ["J#0", "J#1"]),
    "outbox": ("outbox_pk", "outbox_sk", ["D#0", "D#1"]),
    "recent": ("list_pk", "list_sk", ["L#0"]),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send(port, operation, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        target = operation if "." in operation else PREFIX + operation
        data = body if isinstance(body, str) else json.dumps(body)
        connection.request(
            "POST", "/", body=data.encode(), headers=dict(HEADERS, **{"X-Amz-Target": target})
        )
        response = connection.getresponse()
        body = response.read()
        return response.status, body, response.getheaders()
    finally:
        connection.close()


def comparable_headers(headers, body):
    """The answer's headers in order, as names and values, except values that differ between
    two servers by construction: the date and the random request id. The checksum and the
    length are checked against this answer's body (which may differ in table timestamps) and
    stand as "ok" or what they are. `Connection` is left out: moto's server closes every
    connection, moto_serialized.py keeps DynamoDB's open (moto_json_front.py)."""
    kept = []
    for name, value in headers:
        lower = name.lower()
        if lower == "connection":
            continue
        if lower in ("date", "x-amzn-requestid"):
            value = "*"
        elif lower == "x-amz-crc32" and value == str(zlib.crc32(body) & 0xFFFFFFFF):
            value = "ok"
        elif lower == "content-length" and value == str(len(body)):
            value = "ok"
        kept.append((name, value))
    return kept


def start(command, environment):
    port = free_port()
    if "moto.server" in command:
        arguments = command + ["-H", "127.0.0.1", "-p", str(port)]
    else:
        arguments = command + ["127.0.0.1", str(port)]
    child = subprocess.Popen(
        arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment
    )
    deadline = time.time() + 60
    while True:
        try:
            send(port, "ListTables", {})
            return child, port
        except OSError:
            if time.time() > deadline or child.poll() is not None:
                raise RuntimeError(f"server {command} did not start")
            time.sleep(0.2)


def comparable(status, body, headers):
    """Status, parsed body without table timestamps (differ between servers), and headers
    (`comparable_headers`)."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = body.decode("utf-8", "replace")

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not k.endswith("DateTime")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return status, strip(parsed), comparable_headers(headers, body)


def create_table_request():
    names = ["pk", "sk"] + [a for h, r, _ in INDEXES.values() for a in (h, r)]
    indexes = []
    for name, (h, r, _) in INDEXES.items():
        projection = (
            {
                "ProjectionType": "INCLUDE",
                "NonKeyAttributes": ["episode_id", "state", "status", "repeats", "last_seen_ms"],
            }
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
    return {
        "TableName": TABLE,
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in names],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": indexes,
        "BillingMode": "PAY_PER_REQUEST",
    }


class Ledger:
    """Random requests shaped like the DynamoDB ledger's."""

    def __init__(self, seed):
        self.random = random.Random(seed)
        # The version each episode probably has (a guess: the generator does not read the
        # answers), so that most conditional updates succeed and some fail.
        self.versions = {}

    def key(self):
        return {"pk": {"S": f"EP#ep-{self.random.randrange(30):04x}"}, "sk": {"S": "EP"}}

    def index_sort(self, key):
        return {"S": f"179593{self.random.randrange(100):04}#{key['pk']['S'][3:]}"}

    def rows(self):
        r = self.random
        rows = {}
        for n in range(r.randint(0, 4)):
            row = {
                "destination": {"S": r.choice(["slack", "pagerduty"])},
                "kind": {"S": r.choice(["started", "verdict", "repeat"])},
                "state": {"S": r.choice(["pending", "sending", "sent", "skipped"])},
                "attempts": {"N": str(r.randint(0, 3))},
                "next_attempt_ms": {"N": str(1795932787061 + r.randrange(10000))},
            }
            if r.random() < 0.3:
                row["lease_owner"] = {"S": "vm:1/outbox"}
            if r.random() < 0.2:
                row["last_error"] = {"S": "no episode message to reply to"}
            if r.random() < 0.1:
                row["tags"] = {"L": [{"S": "a"}, {"N": "1"}, {"BOOL": True}, {"NULL": True}]}
            rows[f"{n:010}#00#{row['destination']['S']}#{row['kind']['S']}"] = {"M": row}
        return {"M": rows}

    def episode(self, key):
        r = self.random
        item = dict(key)
        item.update(
            {
                "episode_id": {"S": key["pk"]["S"][3:]},
                "state": {"S": "queued"},
                "status": {"S": "firing"},
                "version": {"N": "0"},
                "repeats": {"N": "0"},
                "last_seen_ms": {"N": "1795932787061"},
                "labels": {"M": {"alertname": {"S": "CabalTriageTest"}, "n": {"S": "1"}}},
                "expires_at": {"N": "1796000000"},
                "announced": {"BOOL": False},
            }
        )
        for name, (h, s, hashes) in INDEXES.items():
            if name != "outbox" or r.random() < 0.5:
                item[h] = {"S": r.choice(hashes)}
                item[s] = self.index_sort(key)
        if r.random() < 0.5:
            item["rows"] = self.rows()
        return item

    def request(self):
        r = self.random
        roll = r.random()
        if roll < 0.15:
            key = self.key()
            body = {
                "TableName": TABLE,
                "Item": self.episode(key),
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": "pk"},
            }
            if r.random() < 0.7:
                body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            return "PutItem", body
        if roll < 0.25:
            body = {"TableName": TABLE, "Key": self.key(), "ConsistentRead": True}
            if r.random() < 0.3:
                body["ProjectionExpression"] = "#state, #rows"
                body["ExpressionAttributeNames"] = {"#state": "state", "#rows": "rows"}
            return "GetItem", body
        if roll < 0.6:
            return "UpdateItem", self.update()
        if roll < 0.8:
            return "Query", self.query()
        if roll < 0.88:
            keys, seen = [], set()
            for _ in range(r.randint(1, 12)):
                key = self.key()
                if key["pk"]["S"] not in seen:
                    seen.add(key["pk"]["S"])
                    keys.append(key)
            request = {"Keys": keys, "ConsistentRead": True}
            if r.random() < 0.5:
                attributes = r.sample(["state", "version", "rows", "repeats", "queue_sk"], 3)
                request["ProjectionExpression"] = ", ".join(f"#{a}" for a in attributes)
                request["ExpressionAttributeNames"] = {f"#{a}": a for a in attributes}
            return "BatchGetItem", {"RequestItems": {TABLE: request}}
        if roll < 0.93:
            writes, seen = [], set()
            for _ in range(r.randint(1, 6)):
                key = self.key()
                if key["pk"]["S"] in seen:
                    continue
                seen.add(key["pk"]["S"])
                if r.random() < 0.6:
                    writes.append({"DeleteRequest": {"Key": key}})
                else:
                    writes.append({"PutRequest": {"Item": self.episode(key)}})
            return "BatchWriteItem", {"RequestItems": {TABLE: writes}}
        if roll < 0.95:
            return "DescribeTable", {"TableName": TABLE}
        if roll < 0.96:
            return "UpdateTimeToLive", {
                "TableName": TABLE,
                "TimeToLiveSpecification": {
                    "Enabled": r.random() < 0.5,
                    "AttributeName": "expires_at",
                },
            }
        # Requests moto refuses: their error answers must match too.
        return r.choice(
            [
                ("GetItem", {"TableName": "missing", "Key": self.key()}),
                (
                    "UpdateItem",
                    {
                        "TableName": TABLE,
                        "Key": self.key(),
                        "UpdateExpression": "SET #a = :a,",
                        "ExpressionAttributeNames": {"#a": "a"},
                        "ExpressionAttributeValues": {":a": {"S": "x"}},
                    },
                ),
                (
                    "UpdateItem",
                    {
                        "TableName": TABLE,
                        "Key": self.key(),
                        "UpdateExpression": "SET #a = :a",
                        "ExpressionAttributeNames": {"#a": "a", "#unused": "b"},
                        "ExpressionAttributeValues": {":a": {"S": "x"}},
                    },
                ),
                (
                    "UpdateItem",
                    {
                        "TableName": TABLE,
                        "Key": self.key(),
                        "UpdateExpression": "SET #pk = :a",
                        "ExpressionAttributeNames": {"#pk": "pk"},
                        "ExpressionAttributeValues": {":a": {"S": "x"}},
                    },
                ),
                ("PutItem", {"TableName": TABLE, "Item": {"pk": {"S": "EP#x"}}}),
                ("Query", {"TableName": TABLE, "IndexName": "nope",
                           "KeyConditionExpression": "#h = :h",
                           "ExpressionAttributeNames": {"#h": "queue_pk"},
                           "ExpressionAttributeValues": {":h": {"S": "J#0"}}}),
            ]
        )

    def update(self):
        r = self.random
        key = self.key()
        sets, removes, adds = [], [], []
        names, values = {}, {}

        def set_value(attribute, value):
            names[f"#{attribute}"] = attribute
            values[f":{attribute}"] = value
            sets.append(f"#{attribute} = :{attribute}")

        for attribute, make in [
            ("state", lambda: {"S": r.choice(["queued", "running", "triaged", "failed"])}),
            ("job_state", lambda: {"S": r.choice(["leased", "done"])}),
            ("lease_owner", lambda: {"S": f"vm:{r.randrange(3)}/w{r.randrange(4)}"}),
            ("lease_expires_ms", lambda: {"N": str(1795932787061 + r.randrange(100000))}),
            ("rows", self.rows),
            ("report_json", lambda: {"S": json.dumps({"steps": [1, 2], "v": "é"})}),
            ("announced", lambda: {"BOOL": r.random() < 0.5}),
            ("labels", lambda: {"M": {"n": {"S": str(r.randrange(5))}, "x": {"NULL": True}}}),
        ]:
            if r.random() < 0.35:
                set_value(attribute, make())
        for name, (h, s, hashes) in INDEXES.items():
            roll = r.random()
            if roll < 0.3:
                set_value(h, {"S": r.choice(hashes)})
                set_value(s, self.index_sort(key))
            elif roll < 0.45:
                removes += [h, s]
        if r.random() < 0.2:
            removes += ["lease_owner", "lease_expires_ms"]
            for a in ("lease_owner", "lease_expires_ms"):
                if f"#{a}" in names:
                    removes.remove(a)
        if r.random() < 0.3:
            names["#repeats"] = "repeats"
            values[":add_repeats"] = {"N": str(r.randint(1, 3))}
            adds.append("#repeats :add_repeats")
        guess = self.versions.get(key["pk"]["S"], 0)
        version = guess if r.random() < 0.8 else r.randrange(4)
        self.versions[key["pk"]["S"]] = version + 1
        set_value("version", {"N": str(version + 1)})
        for attribute in removes:
            names[f"#{attribute}"] = attribute
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(f"#{a}" for a in removes)
        if adds:
            expression += " ADD " + ", ".join(adds)
        body = {
            "TableName": TABLE,
            "Key": key,
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": r.choice(["ALL_NEW", "ALL_NEW", "NONE", "ALL_OLD", "UPDATED_NEW",
                                      "UPDATED_OLD"]),
        }
        if r.random() < 0.85:
            names["#version"] = "version"
            values[":expected_version"] = {"N": str(version)}
            body["ConditionExpression"] = "(#version = :expected_version)"
            if r.random() < 0.15:
                names["#pk"] = "pk"
                body["ConditionExpression"] = "attribute_exists(#pk) AND " + body[
                    "ConditionExpression"
                ]
        if r.random() < 0.7:
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return body

    def query(self):
        r = self.random
        index = r.choice(list(INDEXES))
        h, s, hashes = INDEXES[index]
        operator = r.choice(["<=", "<", ">=", "BETWEEN", None])
        names = {"#ipk": h}
        values = {":ipk": {"S": r.choice(hashes)}}
        condition = "#ipk = :ipk"
        if operator == "BETWEEN":
            names["#isk"] = s
            low, high = sorted(f"179593{r.randrange(100):04}" for _ in range(2))
            values[":low"], values[":high"] = {"S": low}, {"S": high + "~"}
            condition += " AND #isk BETWEEN :low AND :high"
        elif operator:
            names["#isk"] = s
            values[":isk"] = {"S": f"179593{r.randrange(100):04}~"}
            condition += f" AND #isk {operator} :isk"
        body = {
            "TableName": TABLE,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": r.random() < 0.7,
        }
        if r.random() < 0.7:
            body["Limit"] = r.choice([1, 3, 10, 50])
        roll = r.random()
        if roll < 0.25:
            body["Select"] = "COUNT"
        elif roll < 0.5 and index == "recent":
            names["#state"] = "state"
            body["ProjectionExpression"] = "#state"
        return body


def main() -> int:
    operations = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    recording = sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "ledger-requests.jsonl.gz")
    environment = dict(os.environ, MOTO_INDEXED_QUERY="1", MOTO_INDEXED_QUERY_VERIFY="0")
    environment.pop("MOTO_RECORD", None)
    environment.pop("MOTO_FAST_PATHS", None)
    environment.pop("MOTO_DIRECT_DYNAMODB", None)
    patched, patched_port = start([sys.executable, os.path.join(HERE, "moto_serialized.py")],
                                  environment)
    plain, plain_port = start([sys.executable, "-m", "moto.server"], environment)
    compared = collections.Counter()
    differences = []

    def both(operation, body):
        first = comparable(*send(patched_port, operation, body))
        second = comparable(*send(plain_port, operation, body))
        name = operation.rsplit(".", 1)[-1]
        compared[name if first[0] == 200 else f"{name} {first[0]}"] += 1
        if first != second:
            differences.append((operation, body, first, second))
        return first

    try:
        replayed = 0
        if recording and recording != "-" and os.path.exists(recording):
            opener = gzip.open if recording.endswith(".gz") else open
            with opener(recording, "rt", encoding="utf-8") as lines:
                for line in lines:
                    request = json.loads(line)
                    both(request["target"], request["body"])
                    replayed += 1
                    if len(differences) >= 5:
                        break
        both("CreateTable", create_table_request())
        both("DescribeTable", {"TableName": TABLE})
        both("UpdateTimeToLive", {"TableName": TABLE, "TimeToLiveSpecification": {
            "Enabled": True, "AttributeName": "expires_at"}})
        both("CreateTable", create_table_request())  # exists: an error answer
        generator = Ledger(seed)
        for _ in range(operations):
            if len(differences) >= 5:
                break
            operation, body = generator.request()
            for _page in range(50):
                status, answer, _headers = both(operation, body)
                if operation != "Query" or status != 200 or "LastEvaluatedKey" not in answer:
                    break
                body = dict(body, ExclusiveStartKey=answer["LastEvaluatedKey"])
                compared["Query page"] += 1
    finally:
        for child in (patched, plain):
            child.terminate()
            child.wait()
    total = sum(v for k, v in compared.items() if k != "Query page")
    print(
        f"moto_ledger_equivalence: seed {seed}: replayed {replayed} recorded requests, then "
        f"{operations} random ledger operations; compared {total} answers (status, body and headers): "
        f"{dict(sorted(compared.items()))}; {len(differences)} differences"
    )
    for operation, body, first, second in differences[:5]:
        text = body if isinstance(body, str) else json.dumps(body)
        print(f"DIFFERENCE {operation} {text[:2000]}\n  patched: {str(first)[:3000]}\n"
              f"  moto:    {str(second)[:3000]}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
