"""gzip for what the front door forwards. The dashboards' JavaScript is ~3 MB (Bokeh, Panel, their
widgets), served uncompressed by Panel's server; gzipped it is about a quarter of that. Each static
file is compressed once per process and kept, so a first visit costs the front door's one event
loop no compression work once any visitor has loaded it."""

from __future__ import annotations

import gzip
import hashlib
import threading
import zlib
from collections import OrderedDict

MIN_BYTES = 1024  # smaller bodies gain nothing worth a header
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "application/xml", "image/svg+xml")
LEVEL = 6
STATIC_KEEP_BYTES = 32 * 2**20  # compressed static files kept per process (~1 MB for the page's set)


class _Kept:
    """Compressed bodies by content digest, least recently used dropped first."""

    def __init__(self, budget: int) -> None:
        self._items: OrderedDict[bytes, bytes] = OrderedDict()
        self._size = 0
        self._budget = budget
        self._lock = threading.Lock()

    def get(self, body: bytes) -> bytes:
        key = hashlib.blake2b(body, digest_size=16).digest()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        packed = gzip.compress(body, LEVEL, mtime=0)
        with self._lock:
            if key not in self._items:
                self._items[key] = packed
                self._size += len(packed)
            while self._size > self._budget and self._items:
                self._size -= len(self._items.popitem(last=False)[1])
        return packed


_STATIC = _Kept(STATIC_KEEP_BYTES)


def gzipped(body: bytes, content_type: str, accept_encoding: str, static: bool) -> bytes | None:
    """``body`` gzipped when the client takes gzip and compressing helps; None to send it as is.
    ``static``: a file that many requests share (kept compressed)."""
    if len(body) < MIN_BYTES or "gzip" not in accept_encoding.lower():
        return None
    if not content_type.lower().startswith(COMPRESSIBLE):
        return None
    return _STATIC.get(body) if static else gzip.compress(body, LEVEL, mtime=0)


class Stream:
    """A response sent in parts (a page's shell, then the rest): gzipped as one stream when the
    client takes gzip, each part flushed so the browser can start on it."""

    def __init__(self, accept_encoding: str) -> None:
        self.gzip = "gzip" in accept_encoding.lower()
        self._z = zlib.compressobj(LEVEL, zlib.DEFLATED, 31) if self.gzip else None

    def part(self, data: bytes, last: bool = False) -> bytes:
        if self._z is None:
            return data
        return self._z.compress(data) + self._z.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
