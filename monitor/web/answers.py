"""Answers a web process keeps and gives again while the data they were made from has not changed.

An officer's queue is asked for all day, by every person of the district and by every open page that
refreshes itself, and changes a few times an hour. Each kept answer is stored under the data generation it was
made at (monitor.generations): a request reads the generations once, and an answer kept under the same number
is still exact. Nothing is ever given after its data changed, and nothing expires by age, so there is no
stale window to tune.

Bounded: at most `max_bytes` of answers, the least recently used dropped first. One store per application
(app.state), shared by its threads under a lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

Value = TypeVar("Value")

DEFAULT_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Kept(Generic[Value]):
    generation: Hashable
    value: Value
    size: int


class KeptAnswers(Generic[Value]):
    """Values by key, each given only at the data generation it was made at; the least recently used beyond
    `max_bytes` go."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, _Kept[Value]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, generation: Hashable) -> Value | None:
        """The value kept for `key` at exactly `generation`, or None."""
        with self._lock:
            kept = self._entries.get(key)
            if kept is None or kept.generation != generation:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return kept.value

    def put(self, key: Hashable, generation: Hashable, value: Value, size: int) -> None:
        """Keep `value` (about `size` bytes) for `key` at `generation` (a number, or a tuple of them), in place
        of what was kept for `key`. A slower request that read older numbers may replace a newer answer: the
        next request made at the newer numbers then makes it again, nothing is given that is not exact."""
        if size > self.max_bytes:
            return
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None:
                self._bytes -= kept.size
            self._entries[key] = _Kept(generation, value, size)
            self._entries.move_to_end(key)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes kept."""
        return self._bytes
