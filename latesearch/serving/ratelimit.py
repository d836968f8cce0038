"""`RateLimiter`: a token bucket per client (an API key or an address), as a server's rate
limit (`ServeConfig.rate_limit`, `rate_burst`)."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CLIENTS = 100_000  # buckets kept; the least recently seen client's is dropped past it


class RateLimiter:
    """Each client may make `rate` requests per second on average and `burst` at once.
    `take(client)` spends one request: None when allowed, else the seconds until one is.
    Memory is bounded (`max_clients` buckets, least recently seen dropped: that client
    starts again with a full burst). Thread-safe."""

    def __init__(self, rate: float, burst: int | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 max_clients: int = MAX_CLIENTS) -> None:  # fmt: skip
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1, math.ceil(rate)))
        self.clock, self.max_clients = clock, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    def take(self, client: str) -> float | None:
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / self.rate


def retry_after(seconds: float) -> str:
    """A Retry-After header's value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
