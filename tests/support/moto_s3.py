"""moto's S3 in server mode on a loopback port, for the object-store tests (tests/s3.rs).

Usage: python moto_s3.py  -> prints the port it listens on (127.0.0.1, chosen by the OS), then
serves until killed.

Why not plain `moto_server`: it handles requests on several threads, and its create-if-absent
(`PUT` with `If-None-Match: *`) checks for the key and stores it in two steps, so two writers
racing for one key could both succeed, which real S3 never allows. Serialising the requests
makes every request atomic, as S3's conditional writes are; everything else is moto's
S3-compatible server unchanged.
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialised(environ, start_response):
    with lock:
        # The body is produced inside the lock as well.
        return list(app(environ, start_response))


server = make_server(
    "127.0.0.1", 0, serialised, threaded=True, request_handler=MotoRequestHandler
)
print(server.server_port, flush=True)
server.serve_forever()
