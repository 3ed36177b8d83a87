"""Write the CLI's `--json` document one patient at a time (issue 16): byte for byte what
`orjson.dumps(document, option=OPT_INDENT_2)` gives, without ever holding the whole document (its
dicts and its bytes: about 22 KB of output per patient) in memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import orjson

_INDENT = orjson.OPT_INDENT_2


def _nested(value: Any, depth: int) -> bytes:
    """value as orjson indents it at `depth` levels (two spaces each). JSON strings cannot hold a
    raw newline (orjson escapes it), so every newline in the output is a line break."""
    return orjson.dumps(value, option=_INDENT).replace(b"\n", b"\n" + b"  " * depth)


def document_chunks(fields: Iterable[tuple[str, Any]], streamed: str) -> Iterator[bytes]:
    """The indented JSON object of (key, value) pairs, in order, as chunks; the value of the key
    `streamed` is an iterable written item by item (a JSON array), each item serialised when it
    is reached and then dropped. Ends with a newline, as the CLI always wrote."""
    yield b"{"
    first = True
    for key, value in fields:
        yield (b"\n  " if first else b",\n  ") + orjson.dumps(key) + b": "
        first = False
        if key != streamed:
            yield _nested(value, 1)
            continue
        empty = True
        for item in value:
            yield (b"[\n    " if empty else b",\n    ") + _nested(item, 2)
            empty = False
        yield b"[]" if empty else b"\n  ]"
    yield b"}\n" if first else b"\n}\n"


def write_document(out: BinaryIO, fields: Iterable[tuple[str, Any]], streamed: str) -> None:
    for chunk in document_chunks(fields, streamed):
        out.write(chunk)
