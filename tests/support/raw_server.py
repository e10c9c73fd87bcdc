"""A raw HTTP/1.1 server on loopback that answers each request with scripted bytes.

Each connection reads one request at a time (headers, then a Content-Length body) and sends
the next answer of the script exactly as written, so framing (lengths, chunks, a body ended by
closing), reuse and failures are what a test says they are. An answer may also be a function
of the socket (to drip, close or hang). Every request read is kept, byte for byte.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable

Answer = bytes | Callable[[socket.socket], None]


def answer(status: str = "200 OK", body: bytes = b"{}", *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return (f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{head}\r\n").encode() + body


# Scripts both transports (the thread pool's and the event loop's) are tested against.
GZIPPED = gzip.compress(b'{"ok":true}')
# Decoded, decoded, kept as sent when asked (`decode_content=False`), a DecodeError.
ENCODED_ANSWERS = (answer("200 OK", GZIPPED, "Content-Encoding: gzip"),
                   answer("200 OK", zlib.compress(b"deflated"), "Content-Encoding: deflate"),
                   answer("200 OK", GZIPPED, "Content-Encoding: gzip"),
                   answer("200 OK", b"not gzip at all", "Content-Encoding: gzip"))
CHUNKED_HELLO_WORLD = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")


def until_close(conn: socket.socket) -> None:
    """An answer whose body ends when the server closes: "part one, part two", in two sends."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, ")
    time.sleep(0.05)
    conn.sendall(b"part two")
    conn.close()


class RawServer:
    """Reads one request at a time per connection and sends the next scripted answer; an
    answer may be a function of the socket (to drip, close or hang)."""

    def __init__(self, script: list[Answer]) -> None:
        self.script = list(script)
        self.requests: list[bytes] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                with self._lock:
                    self.requests.append(head + b"\r\n\r\n" + body)
                    reply = self.script.pop(0) if self.script else answer()
                if callable(reply):
                    reply(conn)
                    if conn.fileno() == -1:
                        return
                else:
                    conn.sendall(reply)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


