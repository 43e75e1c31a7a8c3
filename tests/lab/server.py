"""The lab's stand-in for agnhost netexec: answers /hostname with the pod's name and /healthz with ok.

Runs inside a pod's network namespace. The name it answers with is read from a file at each request, so a
test can make an app answer with the wrong identity, or (file removed) with 404.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    port, identity_file = int(sys.argv[1]), Path(sys.argv[2])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/hostname" and identity_file.exists():
                body = identity_file.read_text().strip().encode()
            elif self.path == "/healthz":
                body = b"ok"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: object) -> None:
            sys.stdout.write(f"{self.address_string()} {fmt % args}\n")
            sys.stdout.flush()

    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
