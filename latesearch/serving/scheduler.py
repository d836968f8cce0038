"""`Scheduler`: how a server runs searches: bounded lanes, deadlines, micro-batches.

A request's queries wait in its lane's queue (main, or "exact": mode exact scores every
document and must not hold up the rest). A lane's worker threads take what is queued, up
to `max_batch` queries, waiting at most `max_wait` seconds for more, and run it as one
batch on one version of the index: every query of a token-encoding mode is encoded in
one pass, and the requests that ask the same thing (same mode, k, filter, options) are
searched in one call; each request still gets the answer it would get alone.

A request is refused at once (`ServerBusyError`, a 503 with Retry-After) past
`max_queue` queued queries, or when its lane's expected wait exceeds `max_queue_wait`
(or the deadline): the expected wait is the larger of the queries queued (and the rest
of the batch running) at the lane's measured rate and the age of the oldest request still
queued (which grows when the rate is not measured yet, or is falling). A request that
has waited longer than `max_queue_wait` when a worker takes it (the estimate was wrong)
is refused then: what is answered waited `max_queue_wait` at most, plus its batch's own
time. A request whose deadline passes while it waits is taken out of the queue
(`ServerBusyError`); one that is running gets `DeadlineError` (504), and its worker
finishes the batch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from latesearch.errors import DeadlineError, ServerBusyError, StaleIndexError
from latesearch.index import Index
from latesearch.search.modes import get_mode
from latesearch.search.request import SearchRequest

log = logging.getLogger(__name__)

EXACT_LANE = "exact"
MAIN_LANE = "main"
IDLE_SECONDS = 60.0  # a worker thread with nothing to do for this long ends
Run = Callable[[Any, Any], Any]  # (index, encoded queries or None) -> result


@dataclass(eq=False)
class Job:
    """A request's work: a search of `texts` by `request`, or `run(index, encoded)`."""

    texts: list[str]
    lane: str
    deadline: float  # time.monotonic()
    request: SearchRequest | None = None
    run: Run | None = None
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    encodes: bool = True  # takes its queries' token embeddings from the batch's pass


class Lane:
    """A queue of jobs and the threads that run them in batches."""

    def __init__(self, name: str, scheduler: Scheduler, threads: int) -> None:
        self.name, self.scheduler, self.threads = name, scheduler, threads
        self.jobs: deque[Job] = deque()
        self.queued = 0  # queries
        self.rate = 0.0  # queries per second its workers answer, smoothed
        self.running: dict[int, tuple[float, int]] = {}  # worker -> (batch start, queries)
        self.cond = threading.Condition()
        self._workers: list[threading.Thread] = []
        self.closed = False

    def put(self, job: Job) -> None:
        with self.cond:
            self._start()
            job.queued_at = time.monotonic()
            self.jobs.append(job)
            self.queued += len(job.texts)
            self.cond.notify()

    def expected_wait(self, now: float) -> float:
        """Seconds a request queued now would wait: the rest of the batch running (when
        every worker runs one) and the queries queued, at the lane's recent rate; or the
        oldest queued request's age if larger."""
        with self.cond:
            by_rate = 0.0
            if self.rate:
                by_rate = self.queued / self.rate
                if len(self.running) >= self.threads:  # no worker free
                    by_rate += min(max(0.0, start + size / self.rate - now)
                                   for start, size in self.running.values())  # fmt: skip
            oldest = now - self.jobs[0].queued_at if self.jobs else 0.0
        return max(by_rate, oldest)

    def withdraw(self, job: Job) -> bool:
        """Take `job` out of the queue; False if a worker has taken it already."""
        with self.cond:
            try:
                self.jobs.remove(job)
            except ValueError:
                return False
            self.queued -= len(job.texts)
            return True

    def take(self) -> list[Job] | None:
        """The next batch (None once closed): the jobs queued, in order, up to
        `max_batch` queries (at least one job), waiting up to `max_wait` for more."""
        s = self.scheduler
        with self.cond:
            while not self.jobs and not self.closed:
                if not self.cond.wait(IDLE_SECONDS) and not self.jobs:  # idle: this one ends
                    self._workers.remove(threading.current_thread())
                    return None
            if self.closed:
                return None
            batch, size = [], 0
            until = time.monotonic() + s.max_wait
            while True:
                while self.jobs and (not batch or size + len(self.jobs[0].texts) <= s.max_batch):
                    job = self.jobs.popleft()
                    self.queued -= len(job.texts)
                    batch.append(job)
                    size += len(job.texts)
                left = until - time.monotonic()
                if self.jobs or size >= s.max_batch or left <= 0:
                    return batch
                self.cond.wait(left)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        for worker in list(self._workers):
            worker.join(timeout=30)

    def _start(self) -> None:
        """Worker threads up to `threads` (call with `cond` held)."""
        for n in range(len(self._workers), self.threads):
            worker = threading.Thread(target=self._work, name=f"latesearch-{self.name}-{n}",
                                      daemon=True)  # fmt: skip
            worker.start()
            self._workers.append(worker)

    def _work(self) -> None:
        s, me = self.scheduler, threading.get_ident()
        while (batch := self.take()) is not None:
            now = time.monotonic()
            live = []
            for job in batch:
                if job.future.done():
                    continue
                if now > job.deadline:
                    busy = s.busy("it waited in the queue past its deadline", self)
                    job.future.set_exception(busy)
                elif now - job.queued_at > s.max_queue_wait:  # admitted on an estimate
                    busy = s.busy(f"it waited {now - job.queued_at:.1f} s in the queue, "
                                  f"past the {s.max_queue_wait:g} s limit", self)  # fmt: skip
                    job.future.set_exception(busy)
                else:
                    job.started_at = now
                    live.append(job)
            if not live:
                continue
            with self.cond:
                self.running[me] = (now, sum(len(job.texts) for job in live))
            try:
                s.run_batch(live)
            finally:
                with self.cond:
                    self.running.pop(me, None)


class Scheduler:
    """Lanes of workers over the index `current()` returns (the version to answer from).

    `submit(job)` queues a job (or raises `ServerBusyError`); `wait(job)` / `await
    wait_async(job)` return its result or raise its error, `DeadlineError` or
    `ServerBusyError` at its deadline. `observe(batch_queries)` is called per batch.
    `max_queue_wait` (seconds; None: the deadline) bounds a lane's expected wait."""

    def __init__(
        self,
        current: Callable[[], Any],
        *,
        max_batch: int = 32,
        max_wait: float = 0.002,
        max_queue: int = 256,
        max_queue_wait: float | None = None,
        timeout: float = 10.0,
        threads: int = 1,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        self.current = current
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait, max_queue
        self.timeout = timeout
        self.max_queue_wait = min(timeout, max_queue_wait or timeout)
        self.observe = observe
        self.lanes = {MAIN_LANE: Lane(MAIN_LANE, self, threads),
                      EXACT_LANE: Lane(EXACT_LANE, self, 1)}  # fmt: skip
        self._admit = threading.Lock()

    @property
    def queued(self) -> int:
        """Queries waiting, in every lane."""
        return sum(lane.queued for lane in self.lanes.values())

    def job(self, texts: list[str], *, request: SearchRequest | None = None,
            run: Run | None = None, lane: str = MAIN_LANE) -> Job:  # fmt: skip
        """A job of `texts`, a search by `request` or a `run(index, encoded)` call."""
        encodes = request is None or get_mode(request.mode).queries == "tokens"
        return Job(list(texts), lane, time.monotonic() + self.timeout, request=request,
                   run=run, encodes=encodes)  # fmt: skip

    def submit(self, job: Job) -> Job:
        lane = self.lanes[job.lane]
        with self._admit:
            refused = self.refusal(job.lane, len(job.texts))
            if refused is not None:
                raise refused
            lane.put(job)
        return job

    def refusal(self, lane_name: str = MAIN_LANE, queries: int = 1) -> ServerBusyError | None:
        """The `ServerBusyError` a request of `queries` queries for lane `lane_name` gets
        now (the queue full, or its expected wait past the bound), else None."""
        lane = self.lanes[lane_name]
        queued = self.queued
        if queued and queued + queries > self.max_queue:
            return self.busy(f"the queue is full ({queued} queries waiting; the limit is "
                             f"{self.max_queue})", lane)  # fmt: skip
        wait = lane.expected_wait(time.monotonic())
        if wait > self.max_queue_wait:
            limit = ("deadline" if self.max_queue_wait == self.timeout
                     else "limit on the queue's wait")  # fmt: skip
            return self.busy(f"the queries waiting would take {wait:.1f} s, past the "
                             f"{self.max_queue_wait:g} s {limit}", lane, wait)  # fmt: skip
        return None

    def busy(self, why: str, lane: Lane, wait: float | None = None) -> ServerBusyError:
        """A 503 saying `why`; Retry-After: `wait`, else the time `lane`'s queue takes at
        its rate (whole seconds, at least 1)."""
        wait = lane.queued / (lane.rate or 1.0) if wait is None else wait
        retry = max(1, math.ceil(wait))
        return ServerBusyError(f"the server is busy: {why}; retry in {retry} s",
                               retry_after=retry)  # fmt: skip

    def wait(self, job: Job) -> Any:
        try:
            return job.future.result(timeout=max(0.0, job.deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            return self._expired(job)

    async def wait_async(self, job: Job) -> Any:
        left = max(0.0, job.deadline - time.monotonic())
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(job.future)), left)
        except TimeoutError:
            return self._expired(job)

    def _expired(self, job: Job) -> Any:
        if job.future.done():
            return job.future.result()
        lane = self.lanes[job.lane]
        if lane.withdraw(job):
            raise self.busy(f"the request waited {self.timeout:g} s in the queue", lane)
        raise DeadlineError(f"the request was not answered within {self.timeout:g} s; "
                            "ask for less (a smaller k, fewer queries) or retry later")  # fmt: skip

    def close(self) -> None:
        for lane in self.lanes.values():
            lane.close()

    # ------------------------------------------------------------------ running
    def run_batch(self, jobs: list[Job]) -> None:
        """Run `jobs` on one version of the index; each job's future gets its answer."""
        started = time.perf_counter()
        size = sum(len(job.texts) for job in jobs)
        if self.observe is not None:
            self.observe(size)
        index = self.current()
        try:
            try:
                self._run_on(index, jobs)
            except StaleIndexError:  # replaced while a component was being loaded
                self._run_on(self.current(), [job for job in jobs if not job.future.done()])
        except BaseException as err:  # never leave a request waiting
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(err)
            if not isinstance(err, Exception):
                raise
        seconds = time.perf_counter() - started
        lane = self.lanes[jobs[0].lane]
        rate = size / max(seconds, 1e-6) * lane.threads  # its workers run side by side
        lane.rate = rate if not lane.rate else 0.8 * lane.rate + 0.2 * rate

    def _run_on(self, index: Any, jobs: list[Job]) -> None:
        encoded, encode_s = self._encode(index, [job for job in jobs if job.encodes])
        size = sum(len(job.texts) for job in jobs)
        extra = {"batch_queries": size, "encode_shared": encode_s}
        searches: list[list[Job]] = []  # groups of jobs asking the same
        for job in jobs:
            if job.request is None:
                self._settle(job, lambda job=job: job.run(index, encoded.get(job)), extra)
                continue
            group = next((g for g in searches if g[0].request == job.request), None)
            if group is None:
                searches.append([job])
            else:
                group.append(job)
        for group in searches:
            self._search(index, group, encoded, extra)

    def _encode(self, index: Any, jobs: list[Job]) -> tuple[dict[Job, Any], float]:
        """Each job's slice of one encoding pass over all their queries (none for an
        index that encodes its own, e.g. a sharded one, or when the pass fails: each job
        then encodes its own and meets its own error)."""
        if not isinstance(index, Index) or not jobs:
            return {}, 0.0
        texts = [text for job in jobs for text in job.texts]
        started = time.perf_counter()
        try:
            Q, mask = index.model.encode_queries(texts, to_cpu=False, return_mask=True,
                                                 batch_size=max(len(texts), 1))  # fmt: skip
        except Exception:  # noqa: BLE001 - each job is retried alone
            log.debug("shared query encoding failed; jobs encode alone", exc_info=True)
            return {}, 0.0
        out, start = {}, 0
        for job in jobs:
            end = start + len(job.texts)
            out[job] = (Q[start:end], mask[start:end])
            start = end
        return out, time.perf_counter() - started

    def _search(self, index: Any, group: list[Job], encoded: dict[Job, Any],
                extra: dict[str, Any]) -> None:  # fmt: skip
        """One search for every job of `group` (same request), else one per job."""
        if len(group) > 1 and all(job in encoded for job in group):
            import torch

            texts = [text for job in group for text in job.texts]
            width = max(encoded[job][0].shape[1] for job in group)
            Q = torch.cat([_pad(encoded[job][0], width) for job in group])
            mask = torch.cat([_pad(encoded[job][1], width) for job in group])
            try:
                hits = index.search(texts, request=group[0].request, encoded=(Q, mask))
            except StaleIndexError:
                raise
            except Exception:  # noqa: BLE001 - each job meets its own error alone
                hits = None
            if hits is not None:
                timings = _timings(index)
                start = 0
                for job in group:
                    part = hits[start : start + len(job.texts)]
                    start += len(job.texts)
                    job.future.set_result((part, _with(timings, job, extra)))
                return
        for job in group:

            def alone(job: Job = job) -> Any:
                shared = {"encoded": encoded[job]} if job in encoded else {}
                found = index.search(job.texts, request=job.request, **shared)
                return found, _timings(index)

            self._settle(job, alone, extra)

    def _settle(self, job: Job, call: Callable[[], Any], extra: dict[str, Any]) -> None:
        """The job's future gets `call()`'s (result, timings) or its error (a
        StaleIndexError goes up: the batch is run again on the next version)."""
        try:
            result, timings = call()
        except StaleIndexError:
            raise
        except Exception as err:  # noqa: BLE001 - the request's own error
            job.future.set_exception(err)
            return
        job.future.set_result((result, _with(timings, job, extra)))


def _pad(tensor: Any, width: int) -> Any:
    """Query embeddings (n, L, dim) or a mask (n, L) padded to `width` positions (zeros,
    unmasked: not scored)."""
    import torch.nn.functional as F

    extra = width - tensor.shape[1]
    if extra == 0:
        return tensor
    pad = (0, 0, 0, extra) if tensor.ndim == 3 else (0, extra)
    return F.pad(tensor, pad)


def _timings(index: Any) -> dict[str, Any]:
    timings = index.last_timings
    return timings.to_dict() if timings is not None else {}


def _with(timings: dict[str, Any], job: Job, extra: dict[str, Any]) -> dict[str, Any]:
    """A search's timings as one request sees them: its own query count, the time it
    waited in the queue, the batch it ran in."""
    queued = (job.started_at or job.queued_at) - job.queued_at
    return {**timings, "n_queries": len(job.texts), "queued": queued, **extra}
