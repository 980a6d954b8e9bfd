"""The Mapillary client: where the token goes, what is retried and how long it waits."""

from __future__ import annotations

import asyncio

import pytest

from geolocate.acquire.client import ExpiredURL, RequestFailed, open_client, read_token
from geolocate.errors import UserError

BOX = (2.30, 48.85, 2.31, 48.86)


def _run(fake, sleeps, job, **cfg):
    async def go():
        async with open_client(fake.fetch_config(**cfg), fake.token, transport=fake.transport(), sleep=sleeps) as client:
            return await job(client)

    return asyncio.run(go())


def test_token_only_in_the_authorization_header_of_api_requests(fake, sleeps):
    async def job(client):
        items = await client.search(BOX)
        return await client.thumbnail(items[0]["thumb_1024_url"])

    body = _run(fake, sleeps, job)
    assert body[:2] == b"\xff\xd8"
    assert all(r.headers["Authorization"] == f"OAuth {fake.token}" for r in fake.api_requests())
    assert fake.thumb_requests() and all("authorization" not in r.headers for r in fake.thumb_requests())
    assert all(fake.token not in str(r.url) and "MLY" not in str(r.url) for r in fake.requests)


def test_search_asks_for_the_fields_it_uses_and_the_limit(fake, sleeps):
    items = _run(fake, sleeps, lambda c: c.search(BOX), limit=7)
    assert len(items) == 7
    params = fake.api_requests()[0].url.params
    assert params["limit"] == "7" and params["bbox"] == "2.3,48.85,2.31,48.86"
    assert {"geometry", "sequence", "captured_at", "creator", "thumb_1024_url"} <= set(params["fields"].split(","))


def test_429_retry_after_is_honoured_and_capped(fake, sleeps):
    fake.fail_next("search", status=429, retry_after=7)
    fake.fail_next("search", status=429, retry_after=900)
    items = _run(fake, sleeps, lambda c: c.search(BOX), backoff_max_s=60)
    assert items and sleeps == [7, 60]
    assert len(fake.api_requests()) == 3


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503}, {"timeout": True}])
def test_server_errors_and_timeouts_are_retried_with_growing_backoff(fake, sleeps, fault):
    fake.fail_next("search", times=3, **fault)
    items = _run(fake, sleeps, lambda c: c.search(BOX), backoff_s=1.0, max_retries=3)
    assert items and len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):  # equal jitter: between half and all of 2^attempt
        assert 2**attempt / 2 <= delay <= 2**attempt


def test_retries_are_bounded_and_the_error_names_no_secret(fake, sleeps):
    fake.fail_next("search", status=500, times=10)
    with pytest.raises(RequestFailed) as err:
        _run(fake, sleeps, lambda c: c.search(BOX), max_retries=2)
    assert "HTTP 500 after 2 retries" in str(err.value) and fake.token not in str(err.value)
    assert len(fake.api_requests()) == 3


def test_client_errors_are_not_retried(fake, sleeps):
    with pytest.raises(RequestFailed, match="HTTP 400"):
        _run(fake, sleeps, lambda c: c.search((2.30, 48.85, 2.40, 48.95)))  # box too large for the API
    assert len(fake.api_requests()) == 1 and sleeps == []


def test_expired_thumbnail_url_raises_expired(fake, sleeps):
    image_id = sorted(fake.images)[0]

    async def job(client):
        item = await client.image(image_id, ("thumb_1024_url",))
        fake.expire(image_id)
        await client.thumbnail(item["thumb_1024_url"])

    with pytest.raises(ExpiredURL):
        _run(fake, sleeps, job)


def test_concurrency_bounds_requests_in_flight(fake, sleeps):
    in_flight, peak = [0], [0]
    handle = fake.handle

    async def counting(request):
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        await asyncio.sleep(0.005)
        try:
            return await handle(request)
        finally:
            in_flight[0] -= 1

    fake.handle = counting

    async def job(client):
        await asyncio.gather(*(client.search(BOX) for _ in range(20)))

    _run(fake, sleeps, job, concurrency=3)
    assert peak[0] == 3


@pytest.mark.parametrize("value", ["", "   "])
def test_missing_token_is_a_user_error_saying_what_to_export(monkeypatch, value):
    monkeypatch.setenv("MAPILLARY_TOKEN", value)
    with pytest.raises(UserError, match=r"export MAPILLARY_TOKEN=MLY\|"):
        read_token()


def test_token_with_a_newline_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("MAPILLARY_TOKEN", "MLY|1|sec\nret")
    with pytest.raises(UserError) as err:
        read_token()
    assert "sec" not in str(err.value)
