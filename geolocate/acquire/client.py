"""The Mapillary Graph API v4 client: bbox search, one-image lookup, thumbnail download.

What it gets right (see `shared/mapillary-api.md`):
- the token goes only in `Authorization: OAuth <token>`, only to the API host; thumbnails (a CDN,
  pre-signed URLs) are fetched with no Authorization header at all;
- at most `fetch.concurrency` requests in flight, API requests under `fetch.requests_per_minute`;
- 429 (honouring `Retry-After`, capped at `backoff_max_s`), 5xx, timeouts and connection errors
  are retried `max_retries` times with exponential backoff and jitter, then `RequestFailed`.
Error messages name the endpoint and the status, never a URL's query, a header or the token.

Test seam: `transport_factory`. When set (tests, benchmarks), `open_client` builds its
`httpx.AsyncClient` on the transport it returns, e.g. a `tests.fakes.mapillary` MockTransport;
`None` (the default) means the real network.
"""

from __future__ import annotations

import asyncio
import os
import random
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import httpx

from geolocate.acquire.ratelimit import RateLimiter, Sleep
from geolocate.acquire.tiling import Box, box_key
from geolocate.config import FetchConfig
from geolocate.errors import UserError
from geolocate.paths import check_image_id

TOKEN_ENV = "MAPILLARY_TOKEN"
# Fields asked for in a bbox search; every field but `id` must be named explicitly.
SEARCH_FIELDS = ("id", "geometry", "sequence", "captured_at", "compass_angle", "is_pano", "camera_type", "creator")
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
    """A thumbnail URL the CDN no longer honours (403/404/410): look the image up again."""


def read_token() -> str:
    """The client token from the environment; UserError (one line, token never echoed) when unusable."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UserError(f"{TOKEN_ENV} is not set; export {TOKEN_ENV}=MLY|... (a client token from mapillary.com/dashboard/developers)")
    if any(ch.isspace() or ord(ch) < 32 for ch in token):
        raise UserError(f"{TOKEN_ENV} contains whitespace or control characters; export {TOKEN_ENV}=MLY|... with the token only")
    return token


def thumb_field(size: int | str) -> str:
    """The image field holding the thumbnail URL of `size` (1024 → 'thumb_1024_url')."""
    return f"thumb_{size}_url"


class MapillaryClient:
    """Async access to the Graph API and its thumbnails over an injected `httpx.AsyncClient`.

    Args:
        cfg: the `[fetch]` table (api_url, limit, retries, backoff, concurrency, rate ceiling).
        token: the client token; kept private, sent only to the API host.
        http: the HTTP client (its transport decides whether this is the network or a fake).
        sleep: the coroutine used for backoff and rate limiting (tests pass a fast one).
        rng: jitter source.
    """

    def __init__(self, cfg: FetchConfig, token: str, http: httpx.AsyncClient, *, sleep: Sleep = asyncio.sleep, rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self._api = httpx.URL(cfg.api_url.rstrip("/") + "/")
        self._auth = {"Authorization": f"OAuth {token}"}
        self._http = http
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(cfg.concurrency)
        self._limiter = RateLimiter(cfg.requests_per_minute, sleep=sleep)
        self.thumb_field = thumb_field(cfg.thumb_size)
        self.requests = 0  # HTTP attempts sent, retries included
        self._connect_failures: dict[str, int] = {}  # host → connect errors in a row
        self.unreachable: dict[str, str] = {}  # host → why it is given up on

    def __repr__(self) -> str:  # never show the token
        return f"MapillaryClient(api_url={self.cfg.api_url!r})"

    async def search(self, box: Box) -> list[dict[str, Any]]:
        """Images in `box` (at most `limit`: a full answer means the box was truncated)."""
        params: dict[str, Any] = {"bbox": box_key(box), "fields": ",".join((*SEARCH_FIELDS, self.thumb_field)), "limit": self.cfg.limit}
        if self.cfg.start_captured_at:
            params["start_captured_at"] = self.cfg.start_captured_at
        if self.cfg.end_captured_at:
            params["end_captured_at"] = self.cfg.end_captured_at
        body = await self._api_get("images", params, "search")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise RequestFailed("search: answer has no 'data' list")
        return [item for item in data if isinstance(item, dict)]

    async def image(self, image_id: str, fields: tuple[str, ...]) -> dict[str, Any]:
        """One image's `fields`; `image_id` must be digits (it becomes the URL path)."""
        body = await self._api_get(check_image_id(image_id), {"fields": ",".join(fields)}, "image lookup")
        if not isinstance(body, dict):
            raise RequestFailed("image lookup: answer is not an object")
        return body

    async def thumbnail(self, url: str) -> bytes:
        """Download a pre-signed thumbnail URL, without any Authorization header.

        Raises:
            ExpiredURL: 403/404/410, the URL needs refreshing.
            RequestFailed: anything else that did not succeed after retries.
        """
        host = httpx.URL(url).host
        response = await self._send("thumbnail", lambda: self._http.get(url, follow_redirects=True), rate_limited=False, host=host)
        if response.status_code in EXPIRED_STATUSES:
            raise ExpiredURL(f"thumbnail: HTTP {response.status_code} (expired URL)")
        _raise_for_status(response, "thumbnail")
        return response.content

    async def _api_get(self, path: str, params: dict[str, Any], what: str) -> Any:
        url = self._api.join(path)
        response = await self._send(what, lambda: self._http.get(url, params=params, headers=self._auth), host=url.host)
        _raise_for_status(response, what)
        try:
            return response.json()
        except ValueError:
            raise RequestFailed(f"{what}: answer is not JSON") from None

    async def _send(self, what: str, call: Callable, rate_limited: bool = True, host: str = "") -> httpx.Response:
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
        if not isinstance(exc, httpx.ConnectError):  # a timeout or a dropped answer: the host is there
            return
        self._connect_failures[host] = self._connect_failures.get(host, 0) + 1
        if self._connect_failures[host] >= UNREACHABLE_AFTER and host not in self.unreachable:
            cause = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
            self.unreachable[host] = f"cannot reach {host or 'the host'} ({cause})"

    def _check_reachable(self, host: str, what: str) -> None:
        if host in self.unreachable:
            raise HostUnreachable(f"{what}: {self.unreachable[host]}")

    def _delay_for(self, response: httpx.Response, attempt: int) -> float:
        retry_after = _retry_after(response)
        if retry_after is not None:
            return min(retry_after, self.cfg.backoff_max_s)
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, capped."""
        delay = min(self.cfg.backoff_max_s, self.cfg.backoff_s * 2**attempt)
        return delay / 2 + self._rng.uniform(0, delay / 2)


@asynccontextmanager
async def open_client(cfg: FetchConfig, token: str, *, transport: httpx.AsyncBaseTransport | None = None, sleep: Sleep = asyncio.sleep, seed: int | None = None) -> AsyncIterator[MapillaryClient]:
    """A `MapillaryClient` on a fresh `httpx.AsyncClient` (on `transport`, else `transport_factory`, else the network)."""
    transport = transport or (transport_factory() if transport_factory else None)
    limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
    async with httpx.AsyncClient(transport=transport, timeout=cfg.timeout_s, limits=limits) as http:
        yield MapillaryClient(cfg, token, http, sleep=sleep, rng=random.Random(seed))


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a numeric Retry-After header (the HTTP-date form is rare here: fall back to backoff)."""
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _raise_for_status(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        raise RequestFailed(f"{what}: HTTP {response.status_code}")
