#!/usr/bin/env python3
"""Checks that moto_fast_paths.py's `direct_attribute_values` serializes DynamoDB answers
exactly as moto's own serializer does, on random attribute values of every type.

The ledger equivalence check (moto_ledger_equivalence.py) sends the ledger's requests, whose
items hold strings, numbers and maps; this one builds random items with every member of the
`AttributeValue` shape (S, N, B, SS, NS, BS, M, L, NULL, BOOL), nested maps and lists with None
elements and empty keys, dicts with several members, members under the other names moto's
picker accepts (`s`, `StringSetAttributeValue`), and values of unexpected classes, puts them in
the answers of GetItem, Query, Scan, BatchGetItem, PutItem and UpdateItem, and serializes each
answer with moto's JSON serializer twice, with and without the direct path, in this process.
It compares the JSON text (or the error) of both.

It also builds random items (attributes of every kind, some of 50 to 200 KB so that some items
pass moto's 405,000-byte limit, some within a few bytes of it, some with values moto refuses) with moto's `Item.__init__` and
with `items_sized_once_when_built`'s, and compares the stored attributes or the exception.

Exits 0 when every answer was the same, 1 otherwise (printing the first differences).
Usage: moto_attribute_value_equivalence.py [ANSWERS] [SEED]
"""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import moto_fast_paths  # noqa: E402
from moto.core import serialize  # noqa: E402
from moto.core.utils import get_service_model  # noqa: E402


def attribute_value(r, depth=0):
    kind = r.choice(
        ["S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL", "several", "alias", "none", "odd"]
    )
    if depth > 3 and kind in ("M", "L", "several"):
        kind = "S"
    if kind == "S":
        return {"S": r.choice(["", "x", "é", "1", "a\nb"])}
    if kind == "N":
        return {"N": r.choice(["1", "-2.5", "1E+3"])}
    if kind == "B":
        return {"B": r.choice([b"\x00\x01", b"", "text"])}
    if kind == "SS":
        return {"SS": r.choice([["a", "b"], [], ["a", None]])}
    if kind == "NS":
        return {"NS": r.choice([["1", "2"], ("1",)])}
    if kind == "BS":
        return {"BS": r.choice([[b"a", "b"], []])}
    if kind == "M":
        return {
            "M": {
                r.choice(["a", "b", "", "c"]): None if r.random() < 0.1 else attribute_value(r, depth + 1)
                for _ in range(r.randint(0, 3))
            }
        }
    if kind == "L":
        return {
            "L": [
                None if r.random() < 0.1 else attribute_value(r, depth + 1)
                for _ in range(r.randint(0, 3))
            ]
        }
    if kind == "NULL":
        return {"NULL": True}
    if kind == "BOOL":
        return {"BOOL": r.choice([True, False])}
    if kind == "several":
        return {"BOOL": True, "S": "x", "M": {"q": attribute_value(r, depth + 1)}, "N": None}
    if kind == "alias":
        return r.choice(
            [{"s": "x"}, {"S": None, "s": "y"}, {"StringSetAttributeValue": ["a"]}, {"S": "x", "s": None}]
        )
    if kind == "none":
        return {"S": None}
    return r.choice([{"S": 5}, {"M": [1]}, {"L": {"a": 1}}, {"foo": 1}, {}, {1: "x"}])


def answer(r, operation, item):
    if operation == "GetItem":
        return {"Item": item}
    if operation in ("Query", "Scan"):
        return {"Items": [item, item], "Count": 2, "ScannedCount": 2}
    if operation == "BatchGetItem":
        return {"Responses": {"ledger": [item]}, "UnprocessedKeys": {}}
    return {"Attributes": item}


def serialized(operation_model, result):
    serializer = serialize.JSONSerializer(
        operation_model, value_picker=serialize.XFormedAttributePicker()
    )
    try:
        return serializer.serialize(result)["body"]
    except Exception as error:  # both must fail alike
        return f"error {type(error).__name__}: {error}"


def built_items_differ(r, count):
    """Items built by moto's `Item.__init__` and by the running-total one: the differences."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    moto_own = Item.__init__
    moto_fast_paths.items_sized_once_when_built()
    running_total = Item.__init__
    if running_total is moto_own:
        return [("the running-total Item.__init__ did not install", None, None)]
    differences = []
    for _ in range(count):
        attributes = {}
        for j in range(r.randint(0, 8)):
            size = r.choice([1, 100, 50_000, 100_000, 135_000, 200_000])
            kind = r.choice(["S", "M", "SS", "L", "N", "refused"])
            if kind == "S":
                value = {"S": "x" * size}
            elif kind == "M":
                value = {"M": {"a": {"S": "y" * size}, "b": {"N": "1"}}}
            elif kind == "SS":
                value = {"SS": ["z" * (size // 2), "w"]}
            elif kind == "L":
                value = {"L": [{"S": "q" * size}, {"BOOL": True}]}
            elif kind == "N":
                value = {"N": "12"}
            else:
                value = {"X": 1}
            attributes[f"k{j}" + "é" * r.randint(0, 2)] = value
        if r.random() < 0.3:
            # Strings whose total size with their names is within a few bytes of the limit.
            attributes = {f"e{j}" + "é" * r.randint(0, 2): None for j in range(r.randint(1, 5))}
            left = 405_000 + r.randint(-12, 12) - sum(len(k.encode()) for k in attributes)
            names = list(attributes)
            for name in names[:-1]:
                part = r.randint(0, left)
                attributes[name] = {"S": "s" * part}
                left -= part
            attributes[names[-1]] = {"S": "s" * max(left, 0)}
        outcomes = []
        for implementation in (moto_own, running_total):
            Item.__init__ = implementation
            try:
                item = Item(DynamoType({"S": "h"}), None, attributes)
                outcomes.append(("stored", type(item.attrs).__name__, list(item.attrs.items())))
            except Exception as error:
                outcomes.append(("raised", type(error).__name__, str(error)))
        if outcomes[0] != outcomes[1]:
            differences.append(("Item", sorted(attributes), outcomes))
    Item.__init__ = running_total
    return differences


def main() -> int:
    answers = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    service_model = get_service_model("dynamodb")
    moto_own = serialize.BaseJSONSerializer._serialize_type_structure
    moto_fast_paths.direct_attribute_values()
    direct = serialize.BaseJSONSerializer._serialize_type_structure
    if direct is moto_own:
        print("moto_attribute_value_equivalence: the direct path did not install")
        return 1
    r = random.Random(seed)
    differences = []
    for _ in range(answers):
        item = {f"a{j}": attribute_value(r) for j in range(r.randint(1, 4))}
        operation = r.choice(["GetItem", "Query", "Scan", "BatchGetItem", "PutItem", "UpdateItem"])
        model = service_model.operation_model(operation)
        result = answer(r, operation, item)
        texts = []
        for implementation in (moto_own, direct):
            serialize.BaseJSONSerializer._serialize_type_structure = implementation
            texts.append(serialized(model, result))
        if texts[0] != texts[1]:
            differences.append((operation, item, texts))
    items = answers // 5
    differences += built_items_differ(r, items)
    print(
        f"moto_attribute_value_equivalence: seed {seed}: compared {answers} serialized answers "
        f"and {items} built items; {len(differences)} differences"
    )
    for operation, item, (own, fast) in differences[:5]:
        print(f"DIFFERENCE {operation} {item!r}\n  moto:   {str(own)[:2000]}\n  fast:   {str(fast)[:2000]}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
