"""A FHIR server that misbehaves on purpose, on 127.0.0.1 and a free port: each request's path
picks an answer (raw bytes, written as slowly as asked). Every request is recorded."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Answer = Callable[[str, socket.socket], None]


def http_answer(
    body: bytes | str | Any,
    status: str = "200 OK",
    headers: dict[str, str] | None = None,
    *,
    length: int | None = None,
) -> Callable[[str, socket.socket], None]:
    if not isinstance(body, bytes):
        body = body.encode() if isinstance(body, str) else json.dumps(body).encode()

    def answer(_: str, sock: socket.socket) -> None:
        head = [
            f"HTTP/1.1 {status}",
            f"Content-Length: {length if length is not None else len(body)}",
        ]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        head += ["Content-Type: application/fhir+json", "Connection: close"]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    return answer


def raw_answer(data: bytes, *, every: float = 0.0, step: int = 1) -> Answer:
    """Send data as is; with every > 0, step bytes at a time every `every` seconds."""

    def answer(_: str, sock: socket.socket) -> None:
        if not every:
            sock.sendall(data)
            return
        for i in range(0, len(data), step):
            sock.sendall(data[i : i + step])
            time.sleep(every)

    return answer


@dataclass
class HostileServer:
    routes: dict[str, Answer] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def route(self, prefix: str, answer: Answer) -> None:
        self.routes[prefix] = answer

    def handle(self, sock: socket.socket) -> None:
        data = b""
        sock.settimeout(5)
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        target = head[0].split(" ")[1]
        headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        self.requests.append((target, headers))
        for prefix in sorted(self.routes, key=len, reverse=True):
            if target.startswith(prefix):
                try:
                    self.routes[prefix](target, sock)
                except OSError:
                    pass  # the client gave up: that is the point of most answers
                return
        http_answer({"resourceType": "Bundle", "type": "searchset"})(target, sock)


@contextmanager
def hostile_server() -> Iterator[HostileServer]:
    server = HostileServer()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            server.handle(self.request)

    class Threaded(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    tcp = Threaded(("127.0.0.1", 0), Handler)
    server.port = tcp.server_address[1]
    thread = threading.Thread(target=tcp.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        tcp.shutdown()
        tcp.server_close()
