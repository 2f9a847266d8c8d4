"""Keeping the explorer responsive: a debouncer for slider events and a small LRU cache."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, Callable, Hashable

__all__ = ["Debouncer", "LRUCache"]


class Debouncer:
    """Call ``function`` once, ``delay`` seconds after the last of a burst of events.

    Dragging a slider sends many values; each re-blend costs a few milliseconds plus a PNG
    sent to the browser. Inside a Jupyter kernel (an asyncio loop is running while widget
    events are handled) the call is scheduled with ``loop.call_later`` and every new event
    pushes it back. Without a running loop (plain Python, tests) or with ``delay <= 0`` the
    call happens at once, so the result is readable right after the value is set.
    """

    def __init__(self, function: Callable[[], Any], delay: float = 0.15):
        if delay < 0:
            raise ValueError(f"delay must be at least 0 seconds; got {delay}.")
        self.function = function
        self.delay = float(delay)
        self._pending: asyncio.TimerHandle | None = None

    def __call__(self) -> None:
        self.cancel()
        loop = _running_loop()
        if self.delay <= 0 or loop is None:
            self.function()
            return
        self._pending = loop.call_later(self.delay, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self.function()

    @property
    def pending(self) -> bool:
        """Whether a call is scheduled and has not happened yet."""
        return self._pending is not None

    def cancel(self) -> None:
        """Drop the scheduled call, if any."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def flush(self) -> None:
        """Make the scheduled call now (nothing happens when none is pending)."""
        if self._pending is not None:
            self.cancel()
            self.function()


def _running_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class LRUCache:
    """A mapping that keeps the ``capacity`` most recently used entries."""

    def __init__(self, capacity: int = 32):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1; got {capacity}.")
        self.capacity = int(capacity)
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value for ``key``; ``compute()`` makes and stores it on a miss."""
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        value = compute()
        self._data[key] = value
        if len(self._data) > self.capacity:
            self._data.popitem(last=False)
        return value

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()
