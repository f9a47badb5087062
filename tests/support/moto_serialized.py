"""moto's server (as `python3 -m moto.server`), but handling one request at a time.

DynamoDB applies each conditional write atomically. moto's threaded server checks a condition and
writes in separate Python steps, so two concurrent conditional puts of the same key can both
succeed, which would make the ledger's exactly-once tests fail for moto's sake. Serializing the
requests restores per-request atomicity; it costs little, since the GIL serializes moto's work
anyway. Connections are still served by threads (keep-alive, a paused client does not block).

Usage: moto_serialized.py HOST PORT
"""

import os
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    inner = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def app(environ, start_response):
        with lock:
            # Run the whole request, body included, under the lock.
            return list(inner(environ, start_response))

    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
