"""Sockets bounded by one wall-clock deadline, for the FHIR reader (salvage/fhir/client.py): every
connect, send and read may only use the time left, so a server trickling bytes cannot hold a worker
longer than the read's budget (issue 14)."""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import time
from typing import Any


class _DeadlineIO(socket.SocketIO):
    """Socket reads that may only use the time left before the deadline. A SocketIO, so the
    socket stays open until the response has been read, as with socket.makefile()."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__(sock, "rb")
        sock._io_refs += 1  # type: ignore[attr-defined]  # as socket.makefile() does
        self._deadline = deadline

    def readinto(self, buffer: Any) -> int | None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline")
        self._sock.settimeout(remaining)  # type: ignore[attr-defined]  # SocketIO's socket
        return super().readinto(buffer)


class _DeadlineSocket:
    """What http.client needs of a socket (sendall, makefile, close), bounded by the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline")
        self._sock.settimeout(remaining)
        self._sock.sendall(data)

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineIO(self._sock, self._deadline))

    def close(self) -> None:
        self._sock.close()


class Connection(http.client.HTTPConnection):
    def __init__(self, scheme: str, host: str, port: int, deadline: float) -> None:
        super().__init__(host, port)
        self._https = scheme == "https"
        self._deadline = deadline

    def connect(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline")
        sock = socket.create_connection((self.host, self.port), timeout=remaining)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._https:
            sock.settimeout(max(0.01, self._deadline - time.monotonic()))
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self.sock = _DeadlineSocket(sock, self._deadline)
