"""Rate limiting (`ServeConfig.rate_limit`): token buckets per client, 429 with
Retry-After over HTTP, per API key or address, /health not counted, off by default."""

from __future__ import annotations

import pytest

from latesearch.errors import ConfigError
from latesearch.serving.config import ServeConfig
from latesearch.serving.ratelimit import RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_buckets_refill_at_the_rate_and_hold_a_burst():
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [None] * 3
    wait = limiter.take("a")
    assert wait == pytest.approx(0.5)
    assert limiter.take("b") is None  # its own bucket
    clock.now += 0.5
    assert limiter.take("a") is None and limiter.take("a") == pytest.approx(0.5)
    clock.now += 60  # idle: back to a full burst, no more
    assert [limiter.take("a") for _ in range(4)][-1] == pytest.approx(0.5)
    assert retry_after(0.01) == "1" and retry_after(1.2) == "2"


def test_default_burst_and_bounded_memory():
    clock = Clock()
    limiter = RateLimiter(0.5, clock=clock, max_clients=10)
    assert limiter.burst == 1
    assert limiter.take("x") is None and limiter.take("x") == pytest.approx(2.0)
    for n in range(50):
        limiter.take(f"c{n}")
    assert len(limiter._buckets) == 10


def test_config_checks():
    assert ServeConfig().rate_limit is None  # off by default
    for bad in ({"rate_limit": 0}, {"rate_limit": -1.0}, {"rate_limit": float("inf")},
                {"rate_burst": 0}, {"max_documents": 0}):  # fmt: skip
        with pytest.raises(ConfigError):
            ServeConfig(**bad)


httpx = pytest.importorskip("httpx")  # the client extra; CI installs it
pytest.importorskip("fastapi")  # the server extra

from latesearch.serving import RunningServer, SearchService  # noqa: E402

KEY = "s3cret"


def test_over_http_a_client_past_its_rate_gets_429_with_retry_after(index):
    from latesearch import Client
    from latesearch.errors import RateLimitError

    service = SearchService(index, ServeConfig(rate_limit=0.05, rate_burst=3), api_key=KEY)
    with RunningServer(service, port=0, quiet=True) as server:
        with httpx.Client(base_url=server.url) as http:
            codes = [http.get("/search", params={"q": "cell", "k": 2}).status_code
                     for _ in range(4)]  # fmt: skip
            assert codes == [200, 200, 200, 429]
            refused = http.get("/search", params={"q": "cell"})
            assert refused.status_code == 429 and "rate limit" in refused.json()["error"]
            assert 1 <= int(refused.headers["Retry-After"]) <= 20
            assert all(http.get("/health").status_code == 200 for _ in range(5))
            keyed = {"Authorization": f"Bearer {KEY}"}  # the key's own bucket
            assert http.get("/search", params={"q": "cell"}, headers=keyed).status_code == 200
            wrong = {"Authorization": "Bearer guess"}  # a wrong key counts as its address
            assert http.get("/search", params={"q": "cell"}, headers=wrong).status_code == 429
        with pytest.raises(RateLimitError) as caught:
            Client(server.url).search("cell")
        assert caught.value.status == 429 and caught.value.retry_after >= 1


def test_off_by_default(index):
    server = RunningServer(SearchService(index), port=0, quiet=True)
    with server, httpx.Client(base_url=server.url) as http:
        codes = {http.get("/search", params={"q": "cell", "k": 1}).status_code
                 for _ in range(30)}  # fmt: skip
    assert codes == {200}
