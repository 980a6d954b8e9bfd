"""The HTTP plumbing every photo source shares: bounded concurrency, a rate ceiling, retries.

- at most `concurrency` requests in flight, API requests under `requests_per_minute`;
- 429 (honouring `Retry-After`, capped at `backoff_max_s`), 5xx, timeouts and connection errors
  are retried `max_retries` times with exponential backoff and jitter, then `RequestFailed`;
- every answer is bounded (`answers.py`): an overall `deadline_s`, `max_answer_mb` for JSON and
  `max_photo_mb` for a photo (decompressed, counted while streaming), same-host redirects only,
  JSON depth. An answer over a bound is not retried, and counts towards giving up on its host.
Error messages name the endpoint and the status, never a URL's query, a header or a token.

Test seam: `transport_factory`. When set (tests, benchmarks), `open_http` builds its
`httpx.AsyncClient` on the transport it returns (a `tests.fakes` MockTransport); `None` (the
default) means the real network.
"""

from __future__ import annotations

import asyncio
import random
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import httpx

from geolocate.acquire.answers import Answer, AnswerRefused, bounded_get, host_of, parse_json
from geolocate.acquire.ratelimit import RateLimiter, Sleep
from geolocate.config import FetchConfig

EXPIRED_STATUSES = (403, 404, 410)
# Connect/DNS failures in a row, with no answer in between, after which a host counts as
# unreachable: offline, every request would spend its whole retry budget for nothing.
UNREACHABLE_AFTER = 3

# Test seam (see module docstring): a zero-argument callable returning an httpx async transport.
transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None


class RequestFailed(Exception):
    """A request that failed for good: a non-retryable answer, or retries exhausted."""


class HostUnreachable(RequestFailed):
    """The host cannot be reached at all (DNS or connect failures in a row): not worth retrying."""


class ExpiredURL(RequestFailed):
    """A photo URL the server no longer honours (403/404/410): look the photo up again."""


class ApiClient:
    """Retrying, rate-limited GETs over an injected `httpx.AsyncClient`; sources subclass it.

    Args:
        cfg: the `[fetch]` table (retries, backoff).
        http: the HTTP client (its transport decides whether this is the network or a fake).
        concurrency: requests in flight at once.
        requests_per_minute: ceiling on rate-limited requests.
        sleep: the coroutine used for backoff and rate limiting (tests pass a fast one).
        rng: jitter source.
    """

    def __init__(self, cfg: FetchConfig, http: httpx.AsyncClient, *, concurrency: int, requests_per_minute: int,
                 sleep: Sleep = asyncio.sleep, rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self._http = http
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(concurrency)
        self._limiter = RateLimiter(requests_per_minute, sleep=sleep)
        self.requests = 0  # HTTP attempts sent, retries included
        self._connect_failures: dict[str, int] = {}  # host → connect errors in a row
        self.unreachable: dict[str, str] = {}  # host → why it is given up on

    async def get_json(self, url: httpx.URL | str, params: dict[str, Any], what: str, headers: dict[str, str] | None = None) -> Any:
        """GET `url` and parse JSON; RequestFailed on any failure (after retries)."""
        cap = int(self.cfg.max_answer_mb * 1e6)
        response = await self._send(what, lambda: self._get(url, params, headers, cap), host=host_of(url))
        _raise_for_status(response, what)
        try:
            return parse_json(response.content)
        except AnswerRefused as exc:
            raise RequestFailed(f"{what}: {exc}") from None

    async def get_bytes(self, url: str, what: str) -> bytes:
        """GET a photo URL (no rate ceiling: CDNs and asset servers are not the API).

        Raises:
            ExpiredURL: 403/404/410, the URL needs refreshing.
            RequestFailed: anything else that did not succeed after retries.
        """
        cap = int(self.cfg.max_photo_mb * 1e6)
        response = await self._send(what, lambda: self._get(url, None, None, cap), rate_limited=False, host=host_of(url))
        if response.status_code in EXPIRED_STATUSES:
            raise ExpiredURL(f"{what}: HTTP {response.status_code} (expired URL)")
        _raise_for_status(response, what)
        return response.content

    async def _get(self, url, params, headers, cap: int) -> Answer:
        return await bounded_get(self._http, url, params=params, headers=headers, cap=cap, deadline_s=self.cfg.deadline_s)

    async def _send(self, what: str, call: Callable, rate_limited: bool = True, host: str = "") -> Answer:
        """One request with bounded retries; holds a concurrency slot for the whole exchange.

        Raises:
            HostUnreachable: `host` failed to connect `UNREACHABLE_AFTER` times in a row (now or before).
            RequestFailed: a non-retryable answer, or retries exhausted.
        """
        async with self._slots:
            for attempt in range(self.cfg.max_retries + 1):
                self._check_reachable(host, what)
                if rate_limited:
                    await self._limiter.acquire()
                self.requests += 1
                try:
                    response = await call()
                except AnswerRefused as exc:  # the server broke a bound: asking again would only do it again
                    self._note_failure(host, exc)
                    raise RequestFailed(f"{what}: {exc}") from None
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    reason, delay = f"{type(exc).__name__}", self._backoff(attempt)
                    self._note_failure(host, exc)
                else:
                    self._connect_failures[host] = 0
                    if not _is_transient(response.status_code):
                        return response
                    reason, delay = f"HTTP {response.status_code}", self._delay_for(response, attempt)
                if attempt < self.cfg.max_retries:
                    self._check_reachable(host, what)
                    await self._sleep(delay)
        raise RequestFailed(f"{what}: {reason} after {self.cfg.max_retries} retries")

    def _note_failure(self, host: str, exc: Exception) -> None:
        if not isinstance(exc, (httpx.ConnectError, AnswerRefused)):  # a timeout or a dropped answer: the host is there
            return
        self._connect_failures[host] = self._connect_failures.get(host, 0) + 1
        if self._connect_failures[host] >= UNREACHABLE_AFTER and host not in self.unreachable:
            cause = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
            self.unreachable[host] = f"cannot reach {host or 'the host'} ({cause})"

    def _check_reachable(self, host: str, what: str) -> None:
        if host in self.unreachable:
            raise HostUnreachable(f"{what}: {self.unreachable[host]}")

    def _delay_for(self, response: Answer, attempt: int) -> float:
        retry_after = _retry_after(response)
        if retry_after is not None:
            return min(retry_after, self.cfg.backoff_max_s)
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, capped."""
        delay = min(self.cfg.backoff_max_s, self.cfg.backoff_s * 2**attempt)
        return delay / 2 + self._rng.uniform(0, delay / 2)


@asynccontextmanager
async def open_http(cfg: FetchConfig, concurrency: int, transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An `httpx.AsyncClient` on `transport`, else `transport_factory`, else the network."""
    transport = transport or (transport_factory() if transport_factory else None)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(transport=transport, timeout=cfg.timeout_s, limits=limits) as http:
        yield http


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


def _retry_after(response: Answer) -> float | None:
    """Seconds from a numeric Retry-After header (the HTTP-date form is rare here: fall back to backoff)."""
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if seconds == seconds else None  # a NaN Retry-After is no delay at all


def _raise_for_status(response: Answer, what: str) -> None:
    if response.status_code >= 400:
        raise RequestFailed(f"{what}: HTTP {response.status_code}")
