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

- A Query on an index that projects KEYS_ONLY or INCLUDE deep-copies every matching item whole
  and then projects it; `Item.project` converts the whole item to plain JSON once per projected
  attribute (15 times for the ledger's `recent` index), then builds a new item from the chosen
  attributes. `cheaper_projections` makes the projection of top-level attributes (no nested
  paths or list indexes) convert only the projected attributes, once each (an item converts
  attribute by attribute, so the values are the same; the result is built from them in the
  same order), and, while such an index query runs, copies the matching items with their keys
  deep-copied and their attributes shared: the projection only reads them and builds a new
  item, so nothing of the stored item reaches the answer or can be changed through it.

- A Query computes the size of every item it visits (twice with moto_indexed_query.py), a
  recursive walk of the whole item; the ledger's `recent` index query visits up to 1 MB of
  items. `item_sizes_kept_between_writes` keeps an item's size while no request can have
  changed it: the size is reused only during read-only requests (GetItem, BatchGetItem, Query,
  Scan, DescribeTable; `request_started` is told the operation by moto_serialized.py), it is
  dropped for the item an UpdateItem touched (the only request of the ledger's that changes a
  stored item in place; PutItem, DeleteItem and BatchWriteItem store new items or remove them),
  and every other kind of request drops all kept sizes.

- Every new `Item` (each PutItem, each UpdateItem's result, each item an index query copies
  or projects) stores its attributes in moto's `LimitedSizeDict`, which, for each attribute
  stored, sums the sizes of every attribute stored before it (a recursive walk of each value)
  to refuse items over 405,000 bytes: quadratic in the attributes, 9% of the server's CPU per
  ledger request. `items_sized_once_when_built` makes `Item.__init__` keep that sum as it
  stores the attributes (the values stored before cannot change while the item is built: each
  is a new `DynamoType` made here), so it raises `ItemSizeTooLarge` at the same attribute
  with the same totals; attributes set later (UpdateItem) still go through moto's check.
  MOTO_ITEM_SIZE_RUNNING_TOTAL=0 turns it off.
- Its response serializer then walks every attribute value of every item through the
  `AttributeValue` shape: ten members looked up (most absent) and a serializer method dispatched
  by name for each, for every value and nested value; after the changes above and
  moto_json_front.py, about a fifth of moto's CPU per ledger request. `direct_attribute_values`
  builds the same output for an `AttributeValue` that is a plain dict (what moto's
  `dynamo_to_dict` makes of a DynamoDB value) with the rules moto's JSON serializer applies
  to each member: strings as they are, booleans as they are, binaries base64-encoded, sets
  member by member, M and L recursively (a None map value left out, a None list element kept),
  present members in the shape's order. Anything else (a key moto's picker would find under
  another name, a value of another class, an empty map key) goes to moto's serializer whole.
  MOTO_DIRECT_ATTRIBUTE_VALUES=0 turns it off.

Everything else (parsing, conditions, update execution, errors, the JSON text itself) is moto's
own code. tests/support/moto_query_equivalence.py replays random requests and the ledger's
recorded requests against this and against unchanged moto and compares every answer.
`MOTO_FAST_PATHS=0` turns these patches off.
"""

import copy
import os
import threading

# Read-only requests reuse kept item sizes; the others listed here store new items or remove
# them (or change none), except UpdateItem, which drops the size of the item it touched. Any
# other request drops every kept size.
_READ_ONLY = frozenset(
    ["GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables", "DescribeTimeToLive"]
)
_NO_IN_PLACE_CHANGE = frozenset(
    ["PutItem", "DeleteItem", "BatchWriteItem", "UpdateItem", "CreateTable", "UpdateTimeToLive"]
)
_sizes = {"reads": False, "generation": 0}


def request_started(operation) -> None:
    """Called (under the server's lock) before each request with its operation, or None."""
    if operation in _READ_ONLY:
        _sizes["reads"] = True
        return
    _sizes["reads"] = False
    if operation not in _NO_IN_PLACE_CHANGE:
        _sizes["generation"] += 1


def request_finished() -> None:
    _sizes["reads"] = False


def install() -> None:
    if os.environ.get("MOTO_FAST_PATHS", "1") == "0":
        return
    cached_member_lookup()
    cheaper_update_copies()
    parsed_update_expressions()
    cached_processing_maps()
    cheaper_projections()
    item_sizes_kept_between_writes()
    if os.environ.get("MOTO_ITEM_SIZE_RUNNING_TOTAL", "1") != "0":
        items_sized_once_when_built()
    if os.environ.get("MOTO_DIRECT_ATTRIBUTE_VALUES", "1") != "0":
        direct_attribute_values()


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

    responses.copy = types.SimpleNamespace(deepcopy=handler_deepcopy, copy=copy.copy)

    # DynamoDBBackend.update_item: `orig_item = copy.deepcopy(item)`, read only by
    # `table.stream_shard.add(orig_item, item)` when the table has a stream. Within an
    # update of a table without a stream, that copy is skipped; every other deep copy in the
    # module (a transaction's copy of the tables for its rollback) is made as before.
    skip = threading.local()

    def backend_deepcopy(value, memo=None):
        if value.__class__ is Item and memo is None and getattr(skip, "table", None) is not None:
            return None
        return copy.deepcopy(value, memo)

    models.copy = types.SimpleNamespace(deepcopy=backend_deepcopy, copy=copy.copy)
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


def cheaper_projections() -> None:
    """Index queries without whole-item copies and conversions (see the module doc)."""
    import re
    import types

    import moto.dynamodb.models.table as table_module
    from moto.dynamodb.models.dynamo_type import Item, deserializer, serializer

    list_index = re.compile(r"(.+)\[(\d+)\]$")
    original_project = Item.project

    def project(self, projection_expressions):
        names = []
        for expression in projection_expressions:
            if len(expression) != 1 or list_index.match(expression[0]):
                return original_project(self, projection_expressions)
            names.append(expression[0])
        # find_nested_key([name], whole) is {name: whole[name]} or {}, merged in order;
        # whole[name] is the deserialized plain JSON of that one attribute.
        result = {}
        for name in names:
            attribute = self.attrs.get(name)
            if attribute is not None and name in self.attrs:
                result[name] = deserializer.deserialize(attribute.to_regular_json())
        return Item(
            hash_key=self.hash_key,
            range_key=self.range_key,
            attrs=serializer.serialize(result)["M"],
        )

    Item.project = project

    # Table.query: `results = copy.deepcopy(results)`, then `index.project(r)` for each.
    projecting = threading.local()

    def shallow(item):
        copy_ = Item.__new__(Item)
        copy_.__dict__.update(item.__dict__)
        copy_.hash_key = copy.deepcopy(item.hash_key)
        copy_.range_key = copy.deepcopy(item.range_key)
        return copy_

    def table_deepcopy(value, memo=None):
        if (
            memo is None
            and getattr(projecting, "active", False)
            and value.__class__ is list
            and all(item.__class__ is Item for item in value)
        ):
            projecting.active = False  # the one copy of the results of this query
            return [shallow(item) for item in value]
        return copy.deepcopy(value, memo)

    table_module.copy = types.SimpleNamespace(deepcopy=table_deepcopy, copy=copy.copy)
    original_query = table_module.Table.query

    def query(self, *args, **kwargs):
        index_name = kwargs.get("index_name", args[7] if len(args) > 7 else None)
        active = False
        if index_name:
            index = next((i for i in self.all_indexes() if i.name == index_name), None)
            projection = (index.projection or {}) if index is not None else {}
            active = projection.get("ProjectionType") in ("KEYS_ONLY", "INCLUDE")
        previous = getattr(projecting, "active", False)
        projecting.active = active
        try:
            return original_query(self, *args, **kwargs)
        finally:
            projecting.active = previous

    table_module.Table.query = query


def item_sizes_kept_between_writes() -> None:
    """Item sizes computed once while no request changes items (see the module doc)."""
    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import Item

    original_size = Item.size

    def size(self):
        if not _sizes["reads"]:
            return original_size(self)
        kept = self.__dict__.get("_harness_size")
        if kept is not None and kept[0] == _sizes["generation"]:
            return kept[1]
        value = original_size(self)
        self.__dict__["_harness_size"] = (_sizes["generation"], value)
        return value

    Item.size = size
    original_update = models.DynamoDBBackend.update_item

    def update_item(self, table_name, key, *args, **kwargs):
        try:
            return original_update(self, table_name, key, *args, **kwargs)
        finally:
            try:
                item = self.get_item(table_name, key)
            except Exception:
                # Cannot tell which item it was: drop every kept size.
                _sizes["generation"] += 1
            else:
                if item is not None:
                    item.__dict__.pop("_harness_size", None)

    models.DynamoDBBackend.update_item = update_item


class _Generic(Exception):
    """A value the direct AttributeValue serialization does not take: moto's serializer does."""


def direct_attribute_values() -> None:
    """Serializes DynamoDB `AttributeValue`s that are plain dicts (see the module doc) directly.

    Installed only when moto's picker finds each member of a plain dict under its own name and
    under no other member's name (checked here), and when no member has a serialized name of
    its own, which is what the walk below assumes."""
    from moto.core import serialize
    from moto.core.utils import get_service_model

    service_model = get_service_model("dynamodb")
    shape = service_model.shape_for("AttributeValue")
    if shape.serialization.get("name") or shape.is_document_type:
        return
    names = frozenset(shape.members)
    kinds = {"string": "string", "blob": "blob", "boolean": "boolean", "map": "map"}
    members = []
    picker = serialize.XFormedAttributePicker()
    for name, member in shape.members.items():
        member.parent = shape
        context = serialize.AttributePickerContext(
            obj={},
            key=name,
            shape=member,
            operation_model=service_model.operation_model("GetItem"),
            service_model=service_model,
            key_path="",
        )
        keys = list(picker.get_possible_keys(context))
        if name not in keys or names.intersection(keys) != {name} or member.serialization.get("name"):
            return
        if member.type_name == "list":
            kind = {"string": "strings", "blob": "blobs"}.get(member.member.type_name)
            if member.member.type_name == "structure" and member.member.name == "AttributeValue":
                kind = "list"
        elif member.type_name == "map":
            kind = "map" if member.value.name == "AttributeValue" else None
        else:
            kind = kinds.get(member.type_name)
        if kind is None:
            return
        members.append((name, kind))
    order = {name: position for position, (name, _) in enumerate(members)}
    kind_of = dict(members)
    picker_class = serialize.XFormedAttributePicker
    original = serialize.BaseJSONSerializer._serialize_type_structure

    def attribute_value(self, value):
        if value.__class__ is not dict:
            raise _Generic
        present = [name for name in value if value[name] is not None]
        if len(present) > 1:
            if not names.issuperset(present):
                raise _Generic
            present.sort(key=order.__getitem__)
        out = {}
        for name in present:
            kind = kind_of.get(name)
            if kind is None:
                raise _Generic
            member = value[name]
            if kind == "string":
                if member.__class__ is not str:
                    raise _Generic
                out[name] = member
            elif kind == "boolean":
                out[name] = member
            elif kind == "blob":
                if member.__class__ is not bytes and member.__class__ is not str:
                    raise _Generic
                out[name] = self._base64(member)
            elif kind == "strings":
                if member.__class__ is not list or any(v.__class__ is not str for v in member):
                    raise _Generic
                out[name] = list(member)
            elif kind == "blobs":
                if member.__class__ is not list or any(
                    v.__class__ is not bytes and v.__class__ is not str for v in member
                ):
                    raise _Generic
                out[name] = [self._base64(v) for v in member]
            elif kind == "map":
                if member.__class__ is not dict:
                    raise _Generic
                mapped = {}
                for key, sub in member.items():
                    if key.__class__ is not str or not key:
                        raise _Generic
                    if sub is not None:
                        mapped[key] = attribute_value(self, sub)
                out[name] = mapped
            else:  # list of AttributeValues
                if member.__class__ is not list:
                    raise _Generic
                out[name] = [None if v is None else attribute_value(self, v) for v in member]
        return out

    def structure(self, serialized, value, shape, key):
        if (
            key
            and value.__class__ is dict
            and shape.name == "AttributeValue"
            and self.service_model.service_name == "dynamodb"
            and self._value_picker.__class__ is picker_class
            and not self._value_picker.response_transformers
        ):
            try:
                serialized[key] = attribute_value(self, value)
                return
            except _Generic:
                pass
        original(self, serialized, value, shape, key)

    serialize.BaseJSONSerializer._serialize_type_structure = structure


def items_sized_once_when_built() -> None:
    """Builds a new `Item`'s attributes with moto's size limit checked on a running total
    (see the module doc) instead of re-summing every attribute stored so far at each one."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.utilities import bytesize

    DynamoType = dynamo_type.DynamoType
    LimitedSizeDict = dynamo_type.LimitedSizeDict

    def sized(entry):
        return entry.size() if type(entry) is DynamoType else bytesize(str(entry))

    def __init__(self, hash_key, range_key, attrs):
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = stored = LimitedSizeDict()
        total = 0  # what LimitedSizeDict.__setitem__ sums over the entries stored so far
        for key, value in attrs.items():
            value = DynamoType(value)
            new_size = bytesize(key) + sized(value)
            if total + new_size > 405000:
                raise ItemSizeTooLarge
            dict.__setitem__(stored, key, value)
            total += sized(key) + sized(value)

    dynamo_type.Item.__init__ = __init__
