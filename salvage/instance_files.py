"""Secrets that every worker must share, kept in the instance folder: created once, atomically
(the first worker to start writes it; the others read it), readable by the owner only."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def shared_secret(path: Path, make: Callable[[], str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text()
    with os.fdopen(fd, "w") as handle:
        value = make()
        handle.write(value)
    return value
