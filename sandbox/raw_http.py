"""A hand-framed HTTP/1.1 POST over a plain socket, for probing the bot's edge.

httpx and http.client write the whole request body before they read any answer, so they cannot
show whether a server refuses a large upload early. `post()` sends the body from a second thread
while the caller's thread waits for the status line, and reports when it came and how much of the
body had gone out by then.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class RawAnswer:
    status: int  # 0 when the connection closed without a status line
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the first header byte sent to the end of the response headers
    body_bytes_sent: int  # request body bytes the socket had accepted when the answer came


def blocks(total: int, fill: bytes = b"x", size: int = 64 * 1024) -> Iterable[bytes]:
    """`total` bytes of `fill`, in pieces of `size` (made once, so sending costs no allocation)."""
    piece = (fill * (size // len(fill) + 1))[:size]
    while total > 0:
        n = min(size, total)
        yield piece if n == size else piece[:n]
        total -= n


def post(
    url: str,
    body: Iterable[bytes],
    *,
    content_length: int | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> RawAnswer:
    """POST `body` to `url`: with `Content-Length` when given, else `Transfer-Encoding: chunked`."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    chunked = content_length is None
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {content_length}")
    sock = socket.create_connection((host, port), timeout=timeout)
    done = threading.Event()
    sent = 0

    def pump() -> None:
        nonlocal sent
        try:
            for block in body:
                if done.is_set():
                    return
                sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block)
                sent += len(block)
            if chunked and not done.is_set():
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server refused and closed: exactly what a limit should do
            return

    t0 = time.perf_counter()
    sender = threading.Thread(target=pump, name="raw-http-body", daemon=True)
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        sender.start()
        raw = b""
        while b"\r\n\r\n" not in raw:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            raw += data
        seconds = time.perf_counter() - t0
        sent_then = sent
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n") if head else ("",)
        fields = status_line.split(" ")
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        answer_headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        length = int(answer_headers.get("content-length", "0") or 0)
        while len(rest) < length:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            rest += data
        return RawAnswer(status, answer_headers, rest[:length], seconds, sent_then)
    finally:
        done.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes a sender blocked in sendall
        sock.close()
        if sender.is_alive():
            sender.join(timeout)
