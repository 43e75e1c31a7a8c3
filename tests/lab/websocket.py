"""The server side of an exec's websocket, as the kubelet and the API server speak it to the `kubernetes` client and
kubectl: the opening handshake, the channel protocols, and the frames.

- The handshake and frames are RFC 6455's (section 4.2.2: Sec-WebSocket-Accept is base64(SHA-1(key + GUID)); 5.2: a
  frame's header, client frames masked, server frames not; 5.5.1: Close with a status code), as
  golang.org/x/net/websocket serves them: one frame per message, and a handshake its Handshake function refuses is
  answered `403 Forbidden` with no body (server.go, newServerConn).
- Subprotocol negotiation is apimachinery's wsstream (pkg/util/httpstream/wsstream/conn.go at v0.35.2, :140-155
  handshake: the first protocol the client offers that the server supports), over the protocols of the two servers
  an exec meets: the API server's stream translator, which takes `v5.channel.k8s.io` (apiserver
  pkg/util/proxy/websocket.go:171-178), and the kubelet's, which takes `v4.channel.k8s.io`, its base64 variant and
  the older ones (kubelet pkg/cri/streaming/remotecommand/websocket.go:73-95). A v5 client is served by the
  translator (wsstream.IsWebSocketRequestWithStreamCloseProtocol), any other by the kubelet.
- Channels (conn.go:342-366, `write`): a binary message is the channel's byte then the data; a base64 one the
  channel's digit then the data in base64. Once open, the server writes an empty message on the lowest writable
  channel (websocket.go:180-190 of each server); v5 adds the client's CLOSE signal (255 then the channel,
  conn.go:303-318), which needs no handling here: the lab's exec has no stdin.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import struct
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
# every protocol either server takes, and whether its messages are binary (else base64 text)
PROTOCOLS = {
    V5: True,
    V4: True,
    "v4.base64.channel.k8s.io": False,
    "channel.k8s.io": True,
    "base64.channel.k8s.io": False,
    "": True,
}
STDOUT, STDERR, ERROR = 1, 2, 3
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
NORMAL_CLOSURE = 1000


def negotiate(offered: str) -> str | None:
    """The subprotocol the server picks from the client's Sec-WebSocket-Protocol header, or None (403). A v5 client
    reaches the translator, which takes v5 only; others reach the kubelet, which takes all but v5."""
    wanted = [p.strip() for p in offered.split(",")] if offered.strip() else [""]
    supported = {V5} if V5 in wanted else set(PROTOCOLS) - {V5}
    return next((p for p in wanted if p in supported), None)


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def handshake_reply(key: str, protocol: str) -> bytes:
    """The 101 Switching Protocols answer (RFC 6455 4.2.2)."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
    ]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Channels:
    """A websocket connection after the handshake: messages out on channels, the client's frames read (pings
    answered, its close noticed) by `receive`."""

    def __init__(self, sock: socket.socket, protocol: str) -> None:
        self.sock, self.protocol, self.binary = sock, protocol, PROTOCOLS[protocol]
        self.lock = threading.Lock()
        self.client_closed = threading.Event()

    def _frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        size = len(payload)
        if size < 126:
            header += bytes([size])
        elif size < 1 << 16:
            header += bytes([126]) + struct.pack("!H", size)
        else:
            header += bytes([127]) + struct.pack("!Q", size)
        with self.lock:
            self.sock.sendall(header + payload)

    def write(self, channel: int, data: bytes) -> None:
        if self.binary:
            self._frame(OP_BINARY, bytes([channel]) + data)
        else:
            self._frame(OP_TEXT, str(channel).encode() + base64.b64encode(data))

    def close(self, code: int = NORMAL_CLOSURE) -> None:
        """A Close frame with the status code, then the connection (x/net/websocket Conn.Close)."""
        with contextlib.suppress(OSError):
            self._frame(OP_CLOSE, struct.pack("!H", code))
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def receive(self) -> None:
        """Read the client's frames until it closes or the connection goes (then `client_closed` is set)."""
        try:
            while True:
                head = self._read(2)
                opcode, size = head[0] & 0x0F, head[1] & 0x7F
                if size == 126:
                    size = struct.unpack("!H", self._read(2))[0]
                elif size == 127:
                    size = struct.unpack("!Q", self._read(8))[0]
                mask = self._read(4) if head[1] & 0x80 else b"\0\0\0\0"
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(size)))
                if opcode == OP_CLOSE:
                    return
                if opcode == OP_PING:
                    self._frame(OP_PONG, payload)
        except OSError:
            return
        finally:
            self.client_closed.set()

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionResetError("the client went")
            data += chunk
        return data
