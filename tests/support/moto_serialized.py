"""moto's server (as `python3 -m moto.server`), but handling one request at a time.

DynamoDB applies each conditional write atomically. moto's threaded server checks a condition and
writes in separate Python steps, so two concurrent conditional puts of the same key can both
succeed, which would make the ledger's exactly-once tests fail for moto's sake. Serializing the
requests restores per-request atomicity; it costs little, since the GIL serializes moto's work
anyway. Connections are still served by threads (a paused client does not block the others).

DynamoDB's JSON requests do not go through werkzeug's WSGI path and Flask (moto_json_front.py):
for them the handler calls moto's `DynamoHandler.dispatch` directly, with the request object
moto's Flask app would build, answers with the same bytes moto's server sends (status line,
headers in their order, body) in one write, and keeps the connection open (the AWS SDKs reuse
their connections; werkzeug's path answers every request with `Connection: close`, so each
request cost a new connection and a new thread). Everything else (moto's /moto-api, other
services, /_counts) is served by werkzeug as before. MOTO_DIRECT_DYNAMODB=0 turns it off.
Measured on the shared 2-core machine under other load (bench/moto-ledger-replay.py, the 1,140
recorded ledger requests, 4 client threads): the direct path alone cut the server's CPU per
request from 11.3 to 8.2 ms at 2,000 items (72 -> 96 requests/s); with moto_fast_paths.py's
serializer and item-size changes as well, 12.5 -> 10.7 ms at 10,000 items (28 -> 39 requests/s,
both measured while the reliability tests ran). What is left is moto's own DynamoDB work (84% of
a profile's samples). The 500-episode storm test, old and new server back to back: all annotated
after 136 s and 102 s.

moto also recomputes, on every request, answers that cannot change while it runs: the list of its
service modules (a directory listing and a stat per entry, twice per request) and the method
names of a response class (`inspect.getmembers`). `speed_up_moto` caches both; with the requests
serialized, that cut moto's CPU time per request from 7.6 to 5.3 ms (bench/moto-requests.py measures
requests/s).

It does not write werkzeug's access log line per request (about 5% of its CPU per request;
MOTO_ACCESS_LOG=1 brings it back). It counts the AWS requests it answers by operation (the `X-Amz-Target` header, e.g.
`DynamoDB_20120810.PutItem`; answers other than 200, such as a failed condition's 400, also
as `PutItem 400`) and serves the counts as JSON at `GET /_counts`, so tests can report
how many DynamoDB requests the ledger made per episode.

Queries on a secondary index are answered from an index kept in key order instead of moto's sort
of the whole table per query, with moto's answers unchanged (moto_indexed_query.py).
moto_fast_paths.py removes other per-request work of moto's (its serializer's member lookups and
its walk of every attribute value, whole-item copies in UpdateItem and index queries, item sizes
recomputed between writes and re-summed at each attribute of a new item), also
with its answers unchanged; it is told each request's operation (`request_started`).
moto_ledger_equivalence.py and moto_query_equivalence.py compare this server with moto's own.

With MOTO_RECORD=PATH, every JSON-protocol request (target, body and the HTTP status of its
answer, e.g. 400 for a failed condition) is appended to PATH as a JSON line: bench/moto-ledger-replay.py replays such a recording to measure, and
moto_ledger_equivalence.py replays ledger-requests.jsonl.gz (recorded from the storm test).

Usage: moto_serialized.py HOST PORT
"""

import collections
import functools
import json
import os
import sys
import threading

from werkzeug.serving import run_simple

import moto_fast_paths
import moto_indexed_query
import moto_json_front

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def speed_up_moto() -> None:
    """Caches what moto recomputes per request although it is fixed for the process."""
    import moto.backends
    import moto.core.responses

    # The service modules are the package's subdirectories: fixed once installed.
    modules = frozenset(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules
    # A response class's methods do not change at run time (responses.py imported the function
    # by name, so its reference is the one to replace).
    method_names = moto.core.responses.method_names_from_class
    moto.core.responses.method_names_from_class = functools.lru_cache(maxsize=None)(
        lambda clazz: frozenset(method_names(clazz))
    )
    fast_string_comparisons()
    moto_fast_paths.install()


def fast_string_comparisons() -> None:
    """Compares two string attribute values as the strings they are.

    moto's Query sorts every item of the table by its keys (and the matches by the index keys)
    on each request, comparing `DynamoType`s through `cast_value`, which tests the type five
    ways before it returns the string: with 10,000 items a query took about a third of a
    second. For two `S` values, `cast_value` is the value itself, so comparing the values
    directly gives the same answers; every other case goes to moto's own comparison.
    """
    from moto.dynamodb.models.dynamo_type import DynamoType

    def fast(operator_name):
        original = getattr(DynamoType, operator_name)
        compare = getattr(str, operator_name)

        def method(self, other):
            if (
                self.type == "S"
                and other.__class__ is DynamoType
                and other.type == "S"
                and self.value.__class__ is str
                and other.value.__class__ is str
            ):
                return compare(self.value, other.value)
            return original(self, other)

        method.__name__ = operator_name
        return method

    for operator_name in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"):
        setattr(DynamoType, operator_name, fast(operator_name))

    # The sort of all items by primary key: for a table whose keys are strings, sort by the
    # strings (the order moto's comparisons give), else as moto does.
    from moto.dynamodb.models.table import Table

    original_all_items = Table.all_items

    def all_items(self):
        if self.hash_key_type != "S" or self.range_key_type not in (None, "S"):
            return original_all_items(self)
        items = []
        for hash_set in self.items.values():
            if self.range_key_attr:
                items.extend(hash_set.values())
            else:
                items.append(hash_set)
        return sorted(
            items,
            key=lambda x: (x.hash_key.value, x.range_key.value)
            if x.range_key
            else (x.hash_key.value,),
        )

    Table.all_items = all_items


def recorder(path):
    """With MOTO_RECORD=PATH, appends each JSON-protocol request (target, body and the status of
    its answer) to PATH as one JSON line, for bench/moto-ledger-replay.py and the equivalence
    check to replay the ledger's real requests, and to attribute requests (and failed
    conditions) to the ledger's code paths. `record(target, body)` returns a function to call
    with the answer's status."""
    if not path:
        return None
    log = open(path, "a", encoding="utf-8")

    def record(target, body):
        def answered(status):
            line = {"target": target, "body": body.decode("utf-8"), "status": status}
            log.write(json.dumps(line) + "\n")
            log.flush()

        return answered

    return record


def read_body(environ):
    """The WSGI request's body, read here, and the environ to hand on with it unread."""
    import io

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ = dict(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    return environ, body


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    speed_up_moto()
    lock = threading.Lock()
    counts = collections.Counter()
    # Index queries answered from a kept index (see moto_indexed_query.py); counted as
    # "harness Query by index" / "harness Query by moto", apart from the AWS operations.
    moto_indexed_query.install(counts)
    inner = DomainDispatcherApplication(create_backend_app)
    record = recorder(os.environ.get("MOTO_RECORD"))

    def serialized(target, body, work):
        """Runs `work()` (one AWS JSON-protocol request, whose answer starts with its status
        line) under the lock, counting it by operation (and by status when not 200) and
        recording it with MOTO_RECORD."""
        operation = target.rsplit(".", 1)[-1]
        with lock:
            moto_fast_paths.request_started(operation)
            try:
                counts[operation] += 1
                result = work()
                code = result[0].split()[0]
                if code != "200":
                    # Failed conditions (400) and other errors, counted apart as well.
                    counts[f"{operation} {code}"] += 1
                if record is not None:
                    record(target, body)(int(code))
                return result
            finally:
                moto_fast_paths.request_finished()

    def app(environ, start_response):
        """Everything werkzeug serves: /_counts, moto's own, and AWS requests the direct
        DynamoDB path (moto_json_front.py) does not take."""
        if environ.get("PATH_INFO") == "/_counts":
            with lock:
                body = json.dumps(counts).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        target = environ.get("HTTP_X_AMZ_TARGET")
        if not target:
            with lock:
                moto_fast_paths.request_started(None)
                try:
                    return list(inner(environ, start_response))
                finally:
                    moto_fast_paths.request_finished()
        if record is not None:
            environ, body = read_body(environ)
        else:
            body = None
        answer = {}

        def keep(status, headers, *rest):
            answer["start"] = (status, headers, *rest)

        def work():
            answer["body"] = list(inner(environ, keep))
            return answer["start"]

        serialized(target, body, work)
        start_response(*answer["start"])
        return answer["body"]

    base = MotoRequestHandler if os.environ.get("MOTO_ACCESS_LOG") == "1" else QuietRequestHandler
    handler = base
    if os.environ.get("MOTO_DIRECT_DYNAMODB", "1") != "0":
        handler = moto_json_front.handler_class(base, serialized)
    run_simple(host, port, app, threaded=True, request_handler=handler)


class QuietRequestHandler(MotoRequestHandler):
    """moto's request handler without werkzeug's access log line per request.

    Formatting and writing that line (through `logging` and colorama's stream wrapper) is about
    5% of the server's CPU per ledger request (bench/moto-ledger-replay.py, servers
    patched,logging: 11.6 against 12.2 ms), and the line says nothing the counts at /_counts do
    not. Errors are still logged (`log_error`, and werkzeug logs a 5xx's traceback).
    MOTO_ACCESS_LOG=1 brings the line back.
    """

    def log_request(self, code="-", size="-"):
        pass


if __name__ == "__main__":
    main()
