"""The FastAPI application: the page, its vendored assets, and the JSON API over one loaded model.

Safe by default: no OpenAPI/docs pages (they would load assets from a CDN), no CORS unless
`serve.cors_origins` names origins, a Content-Security-Policy that lets the page load nothing from
another host (but the configured tile server), uploads read in memory within
`serve.max_upload_mb` (413 above it), a bad photo answered 400 with one line, and an unexpected
error logged once on the server and answered 500 without a traceback.

Predictions run in a thread pool sized to the cores: requests beyond it wait in its queue and are
never refused (onnxruntime and Pillow release the GIL, so the threads really run in parallel).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from geolocate.errors import UserError
from geolocate.schemas import VIEWS as VIEW_FIELDS
from geolocate.serve.page import STATIC, render_page
from geolocate.serve.upload import BadUpload, TooLarge, check_photo, parse_multipart, read_body

log = logging.getLogger("geolocate.serve")
MAX_TOP = 50


def create_app(model, settings, workers: int | None = None):
    """The application answering with `model` (a `ServedModel`) under `settings` (a `ServeConfig`)."""
    workers = workers or os.cpu_count() or 1
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="predict")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="geolocate", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    limit = int(settings.max_upload_mb * 1024 * 1024)
    page = render_page(model.card, settings)
    csp = content_security_policy(settings.tile_url)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = csp
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # uvicorn logs it once; the client gets one line
        return JSONResponse({"error": "internal error; the server log has the details"}, status_code=500)

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return HTMLResponse(page)

    @app.get("/api/health")
    async def health():
        return {"status": "ok", "run_id": model.card.get("run_id"), "engine": model.card.get("engine"), "workers": workers}

    @app.get("/api/model")
    async def card():
        return model.card

    @app.get("/api/model/error_map.png")
    async def error_map():
        if model.error_map is None:
            return JSONResponse({"error": "this model has no error map (evaluate its run to draw one)"}, status_code=404)
        return FileResponse(model.error_map, media_type="image/png")

    @app.post("/api/predict")
    async def predict(request: Request):
        try:
            body = await read_body(request, limit)
            photos, top = _photos_and_top(parse_multipart(body, request.headers.get("content-type")), model.views)
        except TooLarge:
            return JSONResponse({"error": f"upload over the {settings.max_upload_mb:g} MB limit (serve.max_upload_mb)"}, status_code=413)
        except BadUpload as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            doc = await asyncio.get_running_loop().run_in_executor(pool, model.predict, photos, top)
        except UserError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except Exception:  # noqa: BLE001 - logged here once, with its traceback; the client gets one line
            log.exception("predict failed")
            return JSONResponse({"error": "prediction failed; the server log has the details"}, status_code=500)
        if not doc["predictions"] and doc["failures"]:  # nothing readable (e.g. a truncated JPEG): the first reason
            return JSONResponse({"error": doc["failures"][0]["reason"]}, status_code=400)
        return doc

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_cors(app, settings.cors_origins)
    return app


def _photos_and_top(parts, views: bool):
    """The checked photo bytes of a request (four named views, or photos in order) and its `top`."""
    fields = {p.name: p for p in parts if p.filename is None}
    top = _top(fields.get("top"))
    files = [p for p in parts if p.filename is not None]
    if views:
        named = {p.name: p for p in files if p.name in VIEW_FIELDS}
        ordered = [p for p in files if p.name == "photo"]
        if named and ordered:
            raise BadUpload("give the four views either as fields north/east/south/west or as 'photo' in N, E, S, W order, not both")
        chosen = {k: named[k].data for k in VIEW_FIELDS if k in named} if named else \
            {k: p.data for k, p in zip(VIEW_FIELDS, ordered)}
        if not chosen or len(ordered) > 4:
            raise BadUpload("a four-view model needs up to four views: fields north, east, south, west")
        for name, data in chosen.items():
            check_photo(data, name)
        return chosen, top
    photos = [p for p in files if p.name == "photo"]
    if not photos:
        raise BadUpload("no photo in the request: send it as a form field named 'photo'")
    for i, part in enumerate(photos):
        check_photo(part.data, f"photo {i + 1}")
    return [p.data for p in photos], top


def _top(field) -> int:
    if field is None:
        return 5
    text = field.data.decode("utf-8", "replace").strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOP:
        raise BadUpload(f"top must be a whole number from 1 to {MAX_TOP}, not {text[:20]!r}")
    return int(text)


def content_security_policy(tile_url: str | None) -> str:
    """Only this server, plus the tile server's origin for images when one is configured."""
    tiles = ""
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        host = parts.netloc.replace("a.", "*.", 1) if "{s}" in tile_url else parts.netloc
        tiles = f" {parts.scheme}://{host}"
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob:{tiles}; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def _add_cors(app, origins: list[str]) -> None:
    if origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["GET", "POST"], allow_headers=["*"])


def is_local(host: str) -> bool:
    """True for addresses only this machine reaches (loopback)."""
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
