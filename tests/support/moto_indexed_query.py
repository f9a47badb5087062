"""Answers moto's DynamoDB Query on a secondary index at a cost proportional to the page it reads.

moto 5.2's `Table.query` with an `IndexName` sorts every item of the table by primary key, tests
each against the key condition, sorts the matches by the index keys, and only then skips to the
`ExclusiveStartKey` and stops at the `Limit`: with 10,000 items in the ledger's table a query took
about 116 ms, whatever it returned, and the storm test spent most of moto's time there.

This module keeps, per table and index, the index's entries in key order: for each index hash key
value, the sorted list of (index range key, table hash key, table range key), the order moto sorts
a partition in. It is updated after every call that can change an item: `Table.put_item` and
`Table.delete_item` (which moto's PutItem, DeleteItem, BatchWriteItem, TransactWriteItems,
PartiQL and UpdateItem's creation of a new item all go through) and the backend's `update_item`
(which changes the stored item in place). It is built from the table's items on the first query
of an index, and rebuilt if the index's key schema changed. Tables copied or restored by moto
(a transaction's rollback copy, backups) carry a consistent copy or start without one.

A query then does not change how moto answers it: the wrapper computes the part of the partition
that moto's result loop would visit (the items after the `ExclusiveStartKey` in the scan
direction, up to and including the item at which moto's loop stops for the `Limit` or the 1 MB
page size, as moto counts them) and lets moto's own `Table.query` run on just those items, so
moto still does the key and range tests, sorting, paging, projection, filters and the count.
Only the common case is taken this way: an index with one hash and one range key, string keys
in the table and the index, one hash key equality, at most one range condition on the index's
range key, no legacy `KeyConditions` filters, no consistent read, and an `ExclusiveStartKey` (if
any) in the same partition. Everything else goes to moto's query unchanged.

`MOTO_INDEXED_QUERY=0` turns the shortcut off. `MOTO_INDEXED_QUERY_VERIFY=1` (or a file path)
also runs moto's unchanged query for every query taken the short way and compares items, order,
count, scanned count and `LastEvaluatedKey`; a difference is written to stderr (and appended to
the file), counted at /_counts as "harness Query mismatch", and moto's own answer returned. The
file also gets "verified N queries" lines (N = 1, 10, 100, then every 1,000), so that a test run
whose servers' stderr is discarded still shows that the comparison ran.
bench/moto_query_equivalence.py compares the two on random operations.
"""

import bisect
import os
import sys

_CACHE = "_indexed_query_cache"


class _IndexEntries:
    """One index's entries of one table, in moto's sort order per partition."""

    def __init__(self, table, index):
        self.schema = _schema(index)
        self.hash_attr, self.range_attr = _index_keys(index)
        self.table_hash = table.hash_key_attr
        self.table_range = table.range_key_attr
        # index hash value -> sorted [(index range value, table hash value, table range value)]
        self.partitions = {}
        # primary key (hash, range) -> (index hash value, sort key); sort key -> primary key
        self.entries = {}
        self.locations = {}
        self.usable = True
        for hash_value, by_range in table.items.items():
            for range_value, item in by_range.items():
                self.add(_location(hash_value, range_value), item)

    def add(self, location, item):
        index_hash = item.attrs.get(self.hash_attr)
        index_range = item.attrs.get(self.range_attr)
        # moto's query takes an item into an index when it has both of the index's keys.
        if index_hash is None or index_range is None:
            return
        values = (
            index_hash,
            index_range,
            item.attrs.get(self.table_hash),
            item.attrs.get(self.table_range),
        )
        if location is None or not all(_is_string(v) for v in values):
            # Ordering other types like moto would need its comparisons: not handled here.
            self.usable = False
            return
        key = (values[1].value, values[2].value, values[3].value)
        partition = self.partitions.setdefault(index_hash.value, [])
        bisect.insort(partition, key)
        self.entries[location] = (index_hash.value, key)
        self.locations[(index_hash.value, key)] = location

    def remove(self, location):
        entry = self.entries.pop(location, None)
        if entry is None:
            return
        index_hash, key = entry
        partition = self.partitions[index_hash]
        position = bisect.bisect_left(partition, key)
        del partition[position]
        if not partition:
            del self.partitions[index_hash]
        del self.locations[entry]


def _schema(index):
    return tuple((k["AttributeName"], k["KeyType"]) for k in index.schema)


def _index_keys(index):
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    if len(hashes) == 1 and len(ranges) == 1:
        return hashes[0], ranges[0]
    return None, None


def _is_string(value):
    return value is not None and value.type == "S" and value.value.__class__ is str


def _location(hash_value, range_value):
    if _is_string(hash_value) and _is_string(range_value):
        return (hash_value.value, range_value.value)
    return None


def _string_key_table(table):
    return (
        table.range_key_attr is not None
        and table.hash_key_type == "S"
        and table.range_key_type == "S"
    )


def _entries(table, index):
    """The index's entries, built on first use and rebuilt when the index's keys changed."""
    cache = table.__dict__.setdefault(_CACHE, {})
    entries = cache.get(index.name)
    if entries is None or entries.schema != _schema(index):
        entries = _IndexEntries(table, index)
        cache[index.name] = entries
    return entries


def _reindex(table, hash_value, range_value):
    """Brings the table's index entries for one primary key up to date with the stored item."""
    cache = table.__dict__.get(_CACHE)
    if not cache:
        return
    location = _location(hash_value, range_value)
    if location is None:
        # A string-keyed table stores only items with string keys (moto checks the types on
        # every write): a request with another key changed nothing.
        return
    item = None
    by_range = table.items.get(hash_value) if hash_value is not None else None
    if by_range is not None and range_value is not None:
        item = by_range.get(range_value)
    for entries in cache.values():
        entries.remove(location)
        if item is not None:
            entries.add(location, item)


def _key_values(table, key):
    """The (hash, range) DynamoTypes of a request's key or item attributes, or Nones."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        return (
            DynamoType(key[table.hash_key_attr]),
            DynamoType(key[table.range_key_attr]),
        )
    except (KeyError, TypeError, AttributeError):
        return None, None


def _visited(
    table,
    range_comparison,
    range_objs,
    limit,
    exclusive_start_key,
    scan_index_forward,
    index_name,
    hash_key_conditions,
    range_key_conditions,
):
    """The items moto's result loop would visit, in ascending order, or None if not handled."""
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

    if not _string_key_table(table):
        return None
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    if index is None:
        return None
    hash_attr, range_attr = _index_keys(index)
    if hash_attr is None:
        return None
    if not hash_key_conditions or len(hash_key_conditions) != 1:
        return None
    condition_attr, hash_value = hash_key_conditions[0]
    if condition_attr != hash_attr or not _is_string(hash_value):
        return None
    if range_key_conditions and (
        len(range_key_conditions) != 1 or range_key_conditions[0][0] != range_attr
    ):
        return None
    entries = _entries(table, index)
    if not entries.usable:
        return None
    partition = entries.partitions.get(hash_value.value, [])

    if exclusive_start_key is None:
        order = range(len(partition)) if scan_index_forward is not False else None
        if order is None:
            order = range(len(partition) - 1, -1, -1)
    else:
        try:
            start = [
                DynamoType(exclusive_start_key[a])
                for a in (hash_attr, range_attr, table.hash_key_attr, table.range_key_attr)
            ]
        except (KeyError, TypeError, AttributeError):
            return None
        if not all(_is_string(v) for v in start) or start[0].value != hash_value.value:
            return None
        start_key = (start[1].value, start[2].value, start[3].value)
        # moto skips the items at or before the start key in the scan direction.
        if scan_index_forward is not False:
            order = range(bisect.bisect_right(partition, start_key), len(partition))
        else:
            order = range(bisect.bisect_left(partition, start_key) - 1, -1, -1)

    visited = []
    matched = 0
    size = 0
    for position in order:
        key = partition[position]
        location = entries.locations[(hash_value.value, key)]
        item = table.items[DynamoType({"S": location[0]})][DynamoType({"S": location[1]})]
        visited.append(item)
        # moto's loop: stop at the first item seen with a full page (by count or size).
        if matched == limit:
            break
        item_size = item.size()
        if size + item_size > RESULT_SIZE_LIMIT:
            break
        if range_comparison:
            value = item.attrs.get(range_attr)
            if not (value and value.compare(range_comparison, range_objs)):
                continue
        matched += 1
        size += item_size
    if scan_index_forward is False:
        visited.reverse()
    return visited


def install(counts=None):
    """Installs the index, the hooks and the query shortcut into moto's DynamoDB model."""
    if os.environ.get("MOTO_INDEXED_QUERY", "1") == "0":
        return
    verify = os.environ.get("MOTO_INDEXED_QUERY_VERIFY", "0") not in ("", "0")
    verify_log = os.environ.get("MOTO_INDEXED_QUERY_VERIFY")
    verified = [0]

    def report(line):
        line = f"moto_indexed_query[{os.getpid()}]: {line}"
        print(line, file=sys.stderr, flush=True)
        if verify_log and verify_log != "1":
            with open(verify_log, "a") as log:
                log.write(line + "\n")
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    count = counts.update if counts is not None else (lambda _: None)

    original_put = Table.put_item

    def put_item(self, item_attrs, *args, **kwargs):
        try:
            return original_put(self, item_attrs, *args, **kwargs)
        finally:
            if _CACHE in self.__dict__:
                _reindex(self, *_key_values(self, item_attrs))

    original_delete = Table.delete_item

    def delete_item(self, hash_key, range_key, *args, **kwargs):
        try:
            return original_delete(self, hash_key, range_key, *args, **kwargs)
        finally:
            if _CACHE in self.__dict__:
                _reindex(self, hash_key, range_key)

    original_update = DynamoDBBackend.update_item

    def update_item(self, table_name, key, *args, **kwargs):
        try:
            return original_update(self, table_name, key, *args, **kwargs)
        finally:
            table = self.tables.get(table_name)
            if table is not None and _CACHE in table.__dict__:
                _reindex(table, *_key_values(table, key))

    original_query = Table.query

    def query(
        self,
        hash_key,
        range_comparison,
        range_objs,
        limit,
        exclusive_start_key,
        scan_index_forward,
        projection_expressions,
        index_name=None,
        consistent_read=False,
        filter_expression=None,
        hash_key_conditions=None,
        range_key_conditions=None,
        **filter_kwargs,
    ):
        arguments = (
            hash_key,
            range_comparison,
            range_objs,
            limit,
            exclusive_start_key,
            scan_index_forward,
            projection_expressions,
            index_name,
            consistent_read,
            filter_expression,
        )
        keywords = dict(
            hash_key_conditions=hash_key_conditions,
            range_key_conditions=range_key_conditions,
            **filter_kwargs,
        )
        visited = None
        if index_name and not consistent_read and not filter_kwargs:
            visited = _visited(
                self,
                range_comparison,
                range_objs,
                limit,
                exclusive_start_key,
                scan_index_forward,
                index_name,
                hash_key_conditions,
                range_key_conditions,
            )
        if visited is None:
            count(["harness Query by moto"])
            return original_query(self, *arguments, **keywords)
        count(["harness Query by index"])
        self.all_items = lambda: list(visited)
        try:
            answer = original_query(self, *arguments, **keywords)
        finally:
            del self.__dict__["all_items"]
        if verify:
            expected = original_query(self, *arguments, **keywords)
            verified[0] += 1
            if _answer(answer) != _answer(expected):
                count(["harness Query mismatch"])
                report(
                    f"MISMATCH on {index_name} {hash_key_conditions}"
                    f" {range_key_conditions} limit={limit} start={exclusive_start_key}"
                    f" forward={scan_index_forward}: {_answer(answer)} != {_answer(expected)}"
                )
                return expected
            count(["harness Query verified"])
            if verified[0] in (1, 10, 100) or verified[0] % 1000 == 0:
                report(f"verified {verified[0]} queries")
        return answer

    Table.put_item = put_item
    Table.delete_item = delete_item
    DynamoDBBackend.update_item = update_item
    Table.query = query


def _answer(answer):
    items, scanned, last_key = answer
    return (
        [item.to_json() for item in items],
        scanned,
        None if last_key is None else {k: v.to_json() for k, v in last_key.items()},
    )
