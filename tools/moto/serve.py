"""moto's DynamoDB + DynamoDB Streams server for the RND Realtime tests, one request at a time.

Why not `moto_server`: its werkzeug server is threaded, and moto evaluates a write's
ConditionExpression and then applies the write in separate steps with no lock between them.
Measured: 20 concurrent conditional TransactWriteItems on one item had two or three winners in
7 of 30 rounds. DynamoDB guarantees exactly one, and the store conformance suite's race cases
(transitions, the location rate limit, order numbers) assert it. So this launcher keeps
werkzeug's threads for reading and writing sockets (keep-alive connections of many test clients
stay cheap) but runs moto's WSGI application under one lock: a request is decided and applied
before the next one starts, which is the atomicity DynamoDB gives per item.

Usage: serve.py --port PORT [--host 127.0.0.1]
It prints "moto ready on http://HOST:PORT" once it listens, and stops on SIGTERM or SIGINT.
"""

import argparse
import logging
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class OneAtATime:
    """A WSGI application that runs `app` for one request at a time.

    The response body is read to the end inside the lock, so nothing of one request's work
    (moto builds some bodies lazily) overlaps the next request's.
    """

    def __init__(self, app):
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            captured = {}

            def capture(status, headers, exc_info=None):
                captured["args"] = (status, headers, exc_info)
                return lambda _data: None

            body = self._app(environ, capture)
            try:
                chunks = [bytes(chunk) for chunk in body]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
        status, headers, exc_info = captured["args"]
        start_response(status, headers, exc_info)
        return chunks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    args = parser.parse_args(argv)

    # werkzeug logs every request line; a test run makes tens of thousands. Keep warnings.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )

    def stop(_signum, _frame):
        # shutdown() waits for serve_forever to return: call it off the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"moto ready on http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
