"""Removes work moto 5.2 repeats on every DynamoDB request without changing any answer it gives.

A profile of moto answering the ledger's real requests (recorded from the storm test with
MOTO_RECORD, replayed by bench/moto-ledger-replay.py) showed where its time goes, per request:

- Its response serializer (moto.core.serialize) looks up every member of every output shape
  through `XFormedAttributePicker`: for each member of each nested `AttributeValue` (ten members,
  most absent) it builds an `AttributePickerContext`, joins the key path, instantiates six alias
  providers and runs `xform_name`, to find which keys to try. Those keys depend only on the member
  name, the member's shape and its parent shape (fixed by the service model) and on the class of
  the object read; for a plain `dict` without a `Meta` they are fixed. `cached_member_lookup` asks
  moto's own picker once per (member, shape, parent, class) and then reads the keys it gave. About
  half of moto's CPU per request.
- UpdateItem deep-copies the whole stored item twice: once in the response handler, only to call
  `to_json()` on the copy before the update (`to_json` builds fresh dicts and lists from the item
  and shares only immutable strings, numbers, booleans and bytes with it, so taking it from the
  item itself gives equal, independent data), and once in the backend as the "old image" for a
  DynamoDB stream, which is read only when the table has a stream. `cheaper_update_copies`
  replaces the first by a snapshot of `to_json()` and skips the second for tables without a
  stream (the copy is made and used as before for tables with one).

- UpdateItem parses its update expression twice (handler and backend), and each AST processor
  of moto's validator rebuilds its node-class-to-method map for every node it visits.
  `parsed_update_expressions` keeps the parsed AST per expression string: moto only reads it
  (`find_clauses`) or hands it to its `Validator`, which works on a deep copy
  (`self.node_to_validate = deepcopy(expression)`); an expression that fails to parse is parsed
  (and fails) again each time. `cached_processing_maps` builds each processor's map once per
  processor object: every `_processing_map` in moto 5.2.5 returns the same classes and bound
  methods on each call.

Everything else (parsing, conditions, update execution, errors, the JSON text itself) is moto's
own code. tests/support/moto_query_equivalence.py replays random requests and the ledger's
recorded requests against this and against unchanged moto and compares every answer.
`MOTO_FAST_PATHS=0` turns these patches off.
"""

import copy
import os
import threading


def install() -> None:
    if os.environ.get("MOTO_FAST_PATHS", "1") == "0":
        return
    cached_member_lookup()
    cheaper_update_copies()
    parsed_update_expressions()
    cached_processing_maps()


def cached_member_lookup() -> None:
    """Caches which keys moto's serializer tries for a member of a plain dict (see the module doc)."""
    from moto.core import serialize
    from moto.core.utils import get_value as moto_get_value

    original = serialize.ResponseSerializer.get_value
    picker_class = serialize.XFormedAttributePicker
    context_class = serialize.AttributePickerContext
    missing = serialize.MISSING
    # (member key, id(shape), id(parent), class) -> (shape, parent, keys); the shapes are kept
    # in the value so that their ids cannot be reused while the entry exists.
    cache = {}

    def get_value(self, value, key, shape):
        picker = self._value_picker
        if (
            value.__class__ is not dict
            or picker.__class__ is not picker_class
            or picker.response_transformers
        ):
            return original(self, value, key, shape)
        parent = getattr(shape, "parent", None)
        entry = cache.get((key, id(shape), id(parent)))
        if entry is None or entry[0] is not shape or entry[1] is not parent:
            # The keys moto's picker tries for this member of a plain dict: a dict has no
            # `Meta` (ExplicitAlias) and its class name is "dict" (ClassPrefixAlias), so they
            # do not depend on the dict's contents.
            context = context_class(
                obj={},
                key=key,
                shape=shape,
                operation_model=self.operation_model,
                service_model=self.operation_model.service_model,
                key_path="",
            )
            keys = tuple(picker.get_possible_keys(context))
            entry = (shape, parent, keys)
            cache[(key, id(shape), id(parent))] = entry
        for possible_key in entry[2]:
            if "." in possible_key:
                found = moto_get_value(value, possible_key, missing)
            else:
                found = value.get(possible_key, missing)
            if found is not missing:
                return found
        return None

    serialize.ResponseSerializer.get_value = get_value


class _ItemJsonSnapshot:
    """What UpdateItem's handler uses of its deep copy of the stored item: `to_json()`, taken
    before the update. Truthy, as an `Item` is (it defines neither `__bool__` nor `__len__`)."""

    __slots__ = ("_json",)

    def __init__(self, item):
        self._json = item.to_json()

    def to_json(self):
        return self._json


def cheaper_update_copies() -> None:
    """UpdateItem without its two whole-item deep copies where they are not needed."""
    import types

    import moto.dynamodb.models as models
    import moto.dynamodb.responses as responses
    from moto.dynamodb.models.dynamo_type import Item

    # responses.update_item: `existing_item = copy.deepcopy(get_item(...))`, then only
    # `if existing_item:` and `existing_item.to_json()["Attributes"]` (moto 5.2.5).
    def handler_deepcopy(value, memo=None):
        if value.__class__ is Item and memo is None:
            return _ItemJsonSnapshot(value)
        return copy.deepcopy(value, memo)

    responses.copy = types.SimpleNamespace(deepcopy=handler_deepcopy)

    # DynamoDBBackend.update_item: `orig_item = copy.deepcopy(item)`, read only by
    # `table.stream_shard.add(orig_item, item)` when the table has a stream. Within an
    # update of a table without a stream, that copy is skipped; every other deep copy in the
    # module (a transaction's copy of the tables for its rollback) is made as before.
    skip = threading.local()

    def backend_deepcopy(value, memo=None):
        if value.__class__ is Item and memo is None and getattr(skip, "table", None) is not None:
            return None
        return copy.deepcopy(value, memo)

    models.copy = types.SimpleNamespace(deepcopy=backend_deepcopy)
    original_update = models.DynamoDBBackend.update_item

    def update_item(self, table_name, *args, **kwargs):
        table = self.tables.get(table_name)
        previous = getattr(skip, "table", None)
        skip.table = table if table is not None and table.stream_shard is None else None
        try:
            return original_update(self, table_name, *args, **kwargs)
        finally:
            skip.table = previous

    models.DynamoDBBackend.update_item = update_item


def parsed_update_expressions() -> None:
    """Parses each distinct update expression once (see the module doc)."""
    import collections

    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    original = UpdateExpressionParser.make.__func__
    parsed = collections.OrderedDict()

    def make(cls, expression_str):
        if cls is not UpdateExpressionParser or expression_str.__class__ is not str:
            return original(cls, expression_str)
        ast = parsed.get(expression_str)
        if ast is None:
            ast = original(cls, expression_str)
            parsed[expression_str] = ast
            if len(parsed) > 10_000:
                parsed.popitem(last=False)
        return ast

    UpdateExpressionParser.make = classmethod(make)


def cached_processing_maps() -> None:
    """Builds each AST processor's node-class map once (see the module doc)."""
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser

    def processing_map(self):
        cached = self.__dict__.get("_harness_processing_map")
        if cached is None:
            cached = tuple(self._processing_map().items())
            self.__dict__["_harness_processing_map"] = cached
        return cached

    def nodes_to_be_processed(self):
        cached = self.__dict__.get("_harness_node_classes")
        if cached is None:
            cached = tuple(k for k, _ in processing_map(self))
            self.__dict__["_harness_node_classes"] = cached
        return cached

    def process(self, node):
        for class_key, processor in processing_map(self):
            if isinstance(node, class_key):
                return processor(node)

    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed
    DepthFirstTraverser.process = process
