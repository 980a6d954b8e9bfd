"""Reading a server's answer within bounds: size, time, decompression, redirects, JSON depth.

A photo server or an API mirror is someone else's machine. Whatever it sends, a request ends:
- within `deadline_s` overall (a per-read timeout alone never fires on a server that sends one
  byte every two seconds);
- within `cap` bytes of body, counted while streaming and after decompression, with zlib told
  never to produce more than what is left (a gzip bomb stops at the cap, not in MemoryError);
- within `MAX_REDIRECTS` hops, each to the same host (a redirect loop, or a hop to another
  machine, is an error, not a follow);
- and JSON nested at most `MAX_JSON_DEPTH` deep (a deep answer is refused, never a RecursionError).
Every such failure is a `RequestFailed` naming the endpoint, never the URL's query.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx

from geolocate.config import _depth  # the one iterative depth count (configs and answers: a hostile file cannot recurse us)

MAX_REDIRECTS = 5
MAX_JSON_DEPTH = 32
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class AnswerRefused(Exception):
    """The answer broke a bound (too large, too slow, too deep, bad redirect): not worth a retry."""


@dataclass
class Answer:
    """A finished exchange: the status, the headers and the whole (decompressed) body."""

    status_code: int
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    content: bytes = b""


async def bounded_get(http: httpx.AsyncClient, url: httpx.URL | str, *, params: dict | None = None,
                      headers: dict | None = None, cap: int, deadline_s: float) -> Answer:
    """GET `url` (following same-host redirects) and read at most `cap` body bytes, all within `deadline_s`.

    Raises:
        AnswerRefused: the deadline passed, the body exceeds `cap`, an unknown encoding, or a
            redirect loop / a redirect to another host.
        httpx.TransportError: the connection failed (retried by the caller).
    """
    try:
        return await asyncio.wait_for(_follow(http, httpx.URL(url), params, headers, cap), deadline_s)
    except asyncio.TimeoutError:
        raise AnswerRefused(f"no complete answer within {deadline_s:g} s") from None
    except httpx.InvalidURL:  # a malformed href or Location header
        raise AnswerRefused("not a valid URL") from None


async def _follow(http, url: httpx.URL, params, headers, cap: int) -> Answer:
    asked = {**(headers or {}), "Accept-Encoding": ", ".join(_ENCODINGS)}  # never br/zstd: no bounded decoder here
    for _ in range(MAX_REDIRECTS + 1):
        async with http.stream("GET", url, params=params, headers=asked, follow_redirects=False) as response:
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return Answer(response.status_code, response.headers, await _read(response, cap))
        target = url.join(location)
        if target.host != url.host or target.scheme not in ("http", "https"):
            raise AnswerRefused("redirected to another host (refused)")
        if "Authorization" in asked and target.scheme != url.scheme:
            raise AnswerRefused("redirected to another scheme (refused)")
        url, params = target, None  # the Location carries its own query
    raise AnswerRefused(f"more than {MAX_REDIRECTS} redirects")


async def _read(response: httpx.Response, cap: int) -> bytes:
    """The body, decompressed, refused as soon as it would pass `cap` bytes."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap and not response.headers.get("Content-Encoding"):
        raise AnswerRefused(f"answer of {int(declared) / 1e6:.0f} MB is over the {cap / 1e6:.0f} MB limit")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in (*_ENCODINGS, "identity", ""):
        raise AnswerRefused(f"answer in an unsupported encoding {encoding[:20]!r}")
    if response.is_stream_consumed:  # built in memory (an httpx MockTransport's answer): already whole and decoded
        if len(response.content) > cap:
            raise AnswerRefused(f"answer is over the {cap / 1e6:.0f} MB limit")
        return response.content
    inflate = zlib.decompressobj(_ENCODINGS[encoding]) if encoding in _ENCODINGS else None
    parts, size = [], 0
    async for chunk in response.aiter_raw():
        while chunk:
            if inflate is None:
                piece, chunk = chunk, b""
            else:
                try:
                    piece = inflate.decompress(chunk, cap - size + 1)  # never more than one byte past the cap
                except zlib.error:
                    raise AnswerRefused("answer is not valid compressed data") from None
                chunk = inflate.unconsumed_tail
            size += len(piece)
            if size > cap:
                raise AnswerRefused(f"answer is over the {cap / 1e6:.0f} MB limit")
            parts.append(piece)
    return b"".join(parts)


def host_of(url: httpx.URL | str) -> str:
    """The host of `url`, "" when it does not parse (the request then fails with its reason)."""
    try:
        return httpx.URL(url).host
    except httpx.InvalidURL:
        return ""


def parse_json(body: bytes) -> Any:
    """The JSON of `body`, refused when it is not JSON or nested over `MAX_JSON_DEPTH` levels.

    Raises:
        AnswerRefused: not JSON, or too deep.
    """
    try:
        doc = json.loads(body)
    except RecursionError:
        raise AnswerRefused(f"answer is nested over {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        raise AnswerRefused("answer is not JSON") from None
    if _depth(doc) > MAX_JSON_DEPTH:
        raise AnswerRefused(f"answer is nested over {MAX_JSON_DEPTH} levels")
    return doc
