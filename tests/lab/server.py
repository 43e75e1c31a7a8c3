"""The lab's stand-in for agnhost: the subcommand and flags of the pod's container, served as agnhost serves them.

Usage: server.py IDENTITY_FILE AGNHOST_ARGS... (the container's args: `netexec --http-port=8080`,
`serve-hostname --port=8080`). From kubernetes test/images/agnhost:
- netexec (netexec/netexec.go at 04791b49: init's flags, main, addRoutes and each handler): an HTTP server whose
  routes are /, /clientip, /dial, /echo, /exit, /healthz, /hostname, /redirect, /shell, /upload, /hostName and
  /shutdown in a Go ServeMux; with --http-override=PATH every request is served as a GET of PATH; a UDP server
  (--udp-port, 8081; -1 none) answering `hostname`, `echo MSG` and `clientip`, whose start makes /healthz answer 200
  (412 before, and always without it).
- serve-hostname (serve-hostname/serve_hostname.go at 6732d913): the hostname for every request over HTTP (--http,
  the default), or raw over TCP or UDP (--tcp, --udp; not with HTTP), on --port (9376).
Flags are pflag's: `--name=value` or `--name value`; a boolean alone is true; an unknown one is an error (exit 1).

Nothing agnhost would run, reach or write happens here: /shell answers as agnhost does (JSON `output`) what it would
run, without running it; /dial answers without dialing; /upload says the file it would write without writing it.
The pod's name (agnhost's os.Hostname()) is read from IDENTITY_FILE at each request: a test makes an app answer with
another identity, or (file removed) with 404; those are faults of the lab, not agnhost's.
"""

from __future__ import annotations

import json
import os
import posixpath
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

# (default, type) of each flag, as init() declares them
NETEXEC_FLAGS: dict[str, object] = {
    "http-port": 8080,
    "tls-cert-file": "",
    "tls-private-key-file": "",
    "udp-port": 8081,
    "sctp-port": -1,
    "http-override": "",
    "udp-listen-addresses": "",
}
SERVE_HOSTNAME_FLAGS: dict[str, object] = {"tcp": False, "udp": False, "http": True, "close": False, "port": 9376}
COMMANDS = {"netexec": NETEXEC_FLAGS, "serve-hostname": SERVE_HOSTNAME_FLAGS}
# netexec's addRoutes: exact paths; "/" takes every other path (a Go ServeMux pattern ending in a slash)
NETEXEC_ROUTES = (
    "/clientip", "/dial", "/echo", "/exit", "/healthz", "/hostname", "/redirect", "/shell", "/upload", "/hostName",
    "/shutdown",
)  # fmt: skip


Reply = tuple[int, str, dict[str, str]]  # status, body, headers


@dataclass(frozen=True)
class Request:
    form: dict[str, str]  # r.FormValue's query parameters
    client: str  # r.RemoteAddr
    body: bytes
    content_type: str


class UsageError(Exception):
    """What cobra prints before agnhost exits 1."""


@dataclass
class Agnhost:
    command: str
    flags: dict[str, object] = field(default_factory=dict)

    @property
    def http_port(self) -> int | None:
        """The TCP port its HTTP server listens on (None: it serves no HTTP)."""
        if self.command == "netexec":
            return int(self.flags["http-port"])  # type: ignore[call-overload]
        return int(self.flags["port"]) if self.flags["http"] else None  # type: ignore[call-overload]


def parse(args: list[str]) -> Agnhost:
    """The subcommand and its flags, with the defaults of the ones not given (pflag's rules)."""
    if not args or args[0] not in COMMANDS:
        raise UsageError(f'unknown command "{args[0] if args else ""}" for "agnhost"')
    declared = COMMANDS[args[0]]
    flags, rest = dict(declared), list(args[1:])
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.removeprefix("--").partition("=")
        if not arg.startswith("--") or name not in declared:
            raise UsageError(f"unknown flag: {arg}" if arg.startswith("-") else f'unknown command "{arg}"')
        default = declared[name]
        if isinstance(default, bool):
            if eq and value not in {"true", "false"}:
                raise UsageError(f'invalid argument "{value}" for "--{name}" flag')
            flags[name] = value != "false"
            continue
        if not eq:
            if not rest:
                raise UsageError(f"flag needs an argument: --{name}")
            value = rest.pop(0)
        if isinstance(default, int):
            try:
                flags[name] = int(value)
            except ValueError:
                raise UsageError(f'invalid argument "{value}" for "--{name}" flag') from None
        else:
            flags[name] = value
    return Agnhost(args[0], flags)


def clean(path: str) -> str:
    """Go's path.Clean as ServeMux applies it (net/http, cleanPath): the trailing slash is kept."""
    cleaned = posixpath.normpath("/" + path.lstrip("/")).replace("//", "/")
    return cleaned + "/" if path.endswith("/") and cleaned != "/" else cleaned


class Server:
    def __init__(self, agnhost: Agnhost, identity: Path) -> None:
        self.agnhost, self.identity = agnhost, identity
        self.udp_ready = threading.Event()  # netexec's serverReady

    def hostname(self) -> str | None:
        return self.identity.read_text().strip() if self.identity.exists() else None

    # -- netexec's handlers: (status, body, headers) ------------------------------------------------------------

    def route(self, target: str, client: str, body: bytes, content_type: str) -> Reply:
        """The reply of netexec's mux (its handlers ignore the method)."""
        override = self.agnhost.flags.get("http-override")
        if override:  # main: every request answered as a GET of the override path and its options
            target, body, content_type = str(override), b"", ""
        url = urlsplit(target)
        if clean(url.path) != url.path:
            return 301, "", {"Location": clean(url.path) + (f"?{url.query}" if url.query else "")}
        request = Request({k: v[0] for k, v in parse_qs(url.query).items()}, client, body, content_type)
        handlers: dict[str, Callable[[Request], Reply]] = {
            "/": lambda _: (200, f"NOW: {time.strftime('%Y-%m-%d %H:%M:%S')}", {}),
            "/clientip": lambda r: (200, r.client, {}),
            "/dial": self.dial,
            "/echo": self.echo,
            "/exit": self.exit,
            "/healthz": lambda _: (200 if self.udp_ready.is_set() else 412, "", {}),
            "/hostname": self.identity_reply,
            "/hostName": self.identity_reply,
            "/redirect": self.redirect,
            "/shell": self.shell,
            "/shutdown": lambda _: os._exit(0),
            "/upload": self.upload,
        }
        return handlers[url.path if url.path in NETEXEC_ROUTES else "/"](request)

    def identity_reply(self, _: Request) -> Reply:
        name = self.hostname()
        return (200, name, {}) if name is not None else (404, "404 page not found\n", {})

    @staticmethod
    def echo(request: Request) -> Reply:
        code = request.form.get("code", "")
        if code and not code.lstrip("-").isdigit():
            return 200, f"argument 'code' must be an integer or empty, got {code!r}\n", {}
        return int(code or 200), request.form.get("msg", ""), {}

    @staticmethod
    def exit(request: Request) -> Reply:
        """timeout 0 (the default): os.Exit(code) at once, no answer; a graceful shutdown is not modelled."""
        code = request.form.get("code", "")
        if code and not code.isdigit():
            return 200, f"argument 'code' must be an integer [0-127] or empty, got {code!r}\n", {}
        os._exit(int(code or 0))

    @staticmethod
    def redirect(request: Request) -> Reply:
        code = request.form.get("code", "")
        if code and not code.isdigit():
            return 200, f"argument 'code' must be an integer or empty, got {code!r}\n", {}
        return int(code or 302), "", {"Location": request.form.get("location", "")}

    @staticmethod
    def dial(request: Request) -> Reply:
        """dialHandler's parameter checks; the requests it would then make are not made."""
        form = request.form
        tries = form.get("tries", "1")
        if not tries.lstrip("-").isdigit():
            return 400, "tries parameter is invalid.\n", {}
        if not form.get("request"):
            return 400, "request parameter not specified. <nil>\n", {}
        if form.get("protocol", "").lower() not in {"", "http", "udp", "sctp"}:
            return 400, f"unsupported protocol. {form['protocol']}\n", {}
        what = f"{form.get('protocol') or 'http'} {form.get('host', '')}:{form.get('port', '')} {form['request']}"
        return 200, json.dumps({"errors": [f"lab stand-in: agnhost would dial {what} {tries} time(s)"]}), {}

    @staticmethod
    def shell(request: Request) -> Reply:
        """shellHandler: `sh -c` of shellCommand or cmd, its combined output as JSON `output` (not run here)."""
        cmd = request.form.get("shellCommand") or request.form.get("cmd", "")
        return 200, json.dumps({"output": f"lab stand-in: agnhost would run /bin/sh -c {cmd!r}"}), {}

    @staticmethod
    def upload(request: Request) -> Reply:
        """uploadHandler: the multipart field `file` into /uploads (named here, not written)."""
        head = f"Content-Type: {request.content_type}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + request.body)
        parts = message.iter_parts() if message.is_multipart() else []
        if not any(p.get_param("name", header="content-disposition") == "file" for p in parts):
            return 200, json.dumps({"error": "Unable to upload file."}), {}
        return 201, json.dumps({"output": "/uploads/upload-lab-stand-in-not-written"}), {}

    # -- servers ------------------------------------------------------------------------------------------------

    def http_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if server.agnhost.command == "serve-hostname":
                    name = server.hostname()
                    status, text, headers = (200, name, {}) if name is not None else (404, "", {})
                    if server.agnhost.flags["close"]:
                        headers["Connection"] = "close"
                else:
                    client = f"{self.client_address[0]}:{self.client_address[1]}"
                    ctype = self.headers.get("Content-Type", "")
                    status, text, headers = server.route(self.path, client, body, ctype)
                data = text.encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, fmt: str, *args: object) -> None:
                sys.stdout.write(f"{self.address_string()} {fmt % args}\n")
                sys.stdout.flush()

        return Handler

    def udp(self, address: str, port: int, netexec: bool) -> None:
        """netexec's startUDPServer (commands, lower-cased), or serve-hostname's (the hostname to any datagram)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, port))
        self.udp_ready.set()
        while True:
            data, client = sock.recvfrom(2048)
            text = data.decode(errors="replace").strip().lower()
            if not netexec or text == "hostname":
                reply = self.hostname() or ""
            elif text.startswith("echo "):
                reply = text.split(" ", 1)[1]
            elif text == "clientip":
                reply = f"{client[0]}:{client[1]}"
            else:
                continue
            sock.sendto(reply.encode(), client)

    def tcp(self, port: int) -> None:
        """serve-hostname --tcp: the hostname, then close."""
        listener = socket.create_server(("0.0.0.0", port))
        while True:
            conn, _ = listener.accept()
            with conn:
                conn.sendall((self.hostname() or "").encode())

    def run(self) -> None:
        flags = self.agnhost.flags
        if self.agnhost.command == "netexec":
            if flags["tls-cert-file"] or flags["sctp-port"] != -1:
                raise UsageError("the lab's stand-in models neither HTTPS nor SCTP")
            if flags["udp-port"] != -1:
                for address in str(flags["udp-listen-addresses"]).split(",") if flags["udp-listen-addresses"] else [""]:
                    threading.Thread(target=self.udp, args=(address, flags["udp-port"], True), daemon=True).start()
        else:
            if flags["http"] and (flags["tcp"] or flags["udp"]):
                raise UsageError("Can't server TCP/UDP mode and HTTP mode at the same time")
            if flags["udp"]:
                threading.Thread(target=self.udp, args=("", flags["port"], False), daemon=True).start()
            if flags["tcp"]:
                threading.Thread(target=self.tcp, args=(flags["port"],), daemon=True).start()
        port = self.agnhost.http_port
        if port is None:
            threading.Event().wait()  # its TCP or UDP server serves, in its thread
        else:
            ThreadingHTTPServer(("0.0.0.0", port), self.http_handler()).serve_forever()


def main() -> None:
    identity, args = Path(sys.argv[1]), sys.argv[2:]
    try:
        Server(parse(args), identity).run()
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
