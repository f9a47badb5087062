"""Answers DynamoDB's JSON requests without werkzeug's WSGI round trip and Flask's dispatch.

moto's server hands every request to a WSGI app that picks a Flask app by service (it parses the
Authorization header), and the Flask app routes it, builds a request, calls moto's response
class, wraps the answer in a Response and adds a CORS header; werkzeug's server then writes it in
pieces and closes the connection (`Connection: close`), so a client opens a connection, and the
server starts a thread, for every request. For a DynamoDB request all that routing always ends
in the same place: `DynamoHandler.dispatch`. `handler_class` makes a werkzeug request handler
that, for a request that moto would route to DynamoDB (a POST to `/` with
`X-Amz-Target: DynamoDB_20120810.<Op>` and a SigV4 credential scope for the `dynamodb` service),
calls `DynamoHandler.dispatch` directly with the request object moto's Flask app would have made
(`BackendRequest` over the same WSGI environ), builds the same Response, and writes status line,
headers and body in one write, keeping the connection open (HTTP/1.1 keep-alive, which the AWS
SDKs use). The answer's bytes are those moto's server sends (same headers in the same order,
CORS header included) except `Connection: close`. Every other request, and DynamoDB requests
with anything unusual (chunked or compressed body, `Expect`, an `Origin` header, no
Content-Length), goes to werkzeug's own `run_wsgi` exactly as before.

moto_ledger_equivalence.py compares status, headers and body with moto's own server.
"""

import email.utils
import io
import time

from botocore.exceptions import ClientError
from flask import Response
from moto.dynamodb.responses import DynamoHandler
from moto.moto_api import recorder
from moto.moto_server.werkzeug_app import BackendRequest
from moto.settings import DISABLE_GLOBAL_CORS
from werkzeug.exceptions import InternalServerError

TARGET_PREFIX = "DynamoDB_20120810."

# Headers that make werkzeug's or Flask's path do something the direct path does not
# (dechunking, 100-continue, decompression, CORS answers that depend on the request).
FALL_BACK_HEADERS = (
    "Transfer-Encoding",
    "Expect",
    "Content-Encoding",
    "Origin",
    "Access-Control-Request-Private-Network",
)


def routed_to_dynamodb(handler) -> bool:
    """Whether moto's DomainDispatcherApplication would give this request to DynamoDB's
    `dispatch` (the checks of its `get_application` and `infer_service_region_host`, for the
    requests the direct path takes), with nothing the direct path does differently."""
    if handler.command != "POST" or handler.path != "/":
        return False
    headers = handler.headers
    target = headers.get("X-Amz-Target")
    if not target or not target.startswith(TARGET_PREFIX):
        return False
    length = headers.get("Content-Length")
    if length is None or not length.isdigit():
        return False
    if any(name in headers for name in FALL_BACK_HEADERS):
        return False
    auth = headers.get("Authorization")
    if not auth:
        return False
    try:
        scope = auth.split(",")[0].split()[1].split("/")
    except IndexError:
        return False
    return len(scope) == 5 and scope[3].lower() == "dynamodb"


def answer(environ):
    """What moto's Flask app answers for a DynamoDB request: (status line, headers, body).

    The same steps as moto's `convert_to_flask_response` and Flask's response handling
    (flask_cors adds `Access-Control-Allow-Origin: *` to answers of requests without Origin)."""
    try:
        request = BackendRequest(environ)
        recorder._record_request(request)
        result = DynamoHandler.dispatch(request, request.raw_url, dict(request.headers))
    except ClientError as exc:
        result = 400, {}, exc.response["Error"]["Message"]
    if len(result) == 3:
        status, headers, content = result
    else:
        status, headers, content = 200, {}, result
    response = Response(response=content, status=status, headers=headers)
    if not DISABLE_GLOBAL_CORS:
        response.headers.add("Access-Control-Allow-Origin", "*")
    return wsgi_answer(response, environ)


def wsgi_answer(response, environ):
    headers = response.get_wsgi_headers(environ).to_wsgi_list()
    body = b"".join(response.get_app_iter(environ))
    return response.status, headers, body


_date = (None, None)


def http_date_now():
    """What werkzeug's `date_time_string()` writes (RFC 1123 date of the current second),
    formatted once per second: formatting it was 3% of the server's CPU per request."""
    global _date
    second = int(time.time())
    cached_second, text = _date
    if cached_second != second:
        text = email.utils.formatdate(second, usegmt=True)
        _date = (second, text)
    return text


def handler_class(base, serialized):
    """A subclass of werkzeug's request handler `base` that answers DynamoDB requests directly.

    `serialized(target, body, work)` runs `work()` under the server's lock (counting and
    recording the request) and returns its result."""

    class DirectDynamoDBHandler(base):
        def run_wsgi(self):
            if not routed_to_dynamodb(self):
                return super().run_wsgi()
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.environ = environ = self.make_environ()
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                status, headers, content = serialized(
                    self.headers["X-Amz-Target"], body, lambda: answer(environ)
                )
            except Exception as error:  # as werkzeug: log it, answer 500, close
                self.close_connection = True
                status, headers, content = wsgi_answer(
                    InternalServerError().get_response(environ), environ
                )
                headers.append(("Connection", "close"))
                from werkzeug.debug.tbtools import DebugTraceback

                text = DebugTraceback(error).render_traceback_text()
                self.server.log("error", f"Error on request:\n{text}")
            self.write_answer(status, headers, content)

        def write_answer(self, status, headers, content):
            """Status line, headers and body as werkzeug writes them (its `Server` and `Date`
            first), in one write."""
            code, _, message = status.partition(" ")
            self.log_request(code)
            lines = [
                f"{self.protocol_version} {code} {message}",
                f"Server: {self.version_string()}",
                f"Date: {http_date_now()}",
            ]
            lines.extend(f"{name}: {value}" for name, value in headers)
            head = "\r\n".join(lines).encode("latin-1", "strict") + b"\r\n\r\n"
            self.wfile.write(head + content)

    DirectDynamoDBHandler.__name__ = f"Direct{base.__name__}"
    return DirectDynamoDBHandler
