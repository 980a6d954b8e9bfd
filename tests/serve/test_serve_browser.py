"""The page in a real browser: Debian's chromium, headless, driven by Playwright (no browser download).

A photo is dropped on the page (a real `drop` event carrying a File); the map must then show the
k top cells, the point, the credible circle and the EXIF truth with its error line, and the panel
the numbers. Every request the browser makes must go to this server.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from tests.serve.conftest import TOP

CHROMIUM = os.environ.get("GEOLOCATE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no chromium at {CHROMIUM} (scripts/bootstrap.sh test installs it)")

DROP = """([name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "image/jpeg" }));
  document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
}"""


@pytest.fixture
def browser_page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        yield page
        browser.close()


def test_dropping_a_photo_draws_the_answer(browser_page, live_server, photo_bytes, tmp_path):
    page, requests, problems = browser_page, [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(live_server + "/")
    page.wait_for_selector("#figures tr.model")  # the model card arrived
    # More than 100 country outlines drawn. A locator wait, not `wait_for_function`: a string predicate
    # that is not yet true is polled through eval inside the page, which the page's CSP (script-src
    # 'self') refuses; the test then failed whenever the outlines came late (a loaded machine).
    page.locator(".leaflet-overlay-pane path").nth(100).wait_for(state="attached")
    page.evaluate(DROP, ["paris.jpg", base64.b64encode(photo_bytes).decode()])
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)

    assert page.locator("path.geo-cell").count() == TOP
    for kind in ("geo-point", "geo-radius", "geo-truth", "geo-error"):
        assert page.locator(f"path.{kind}").count() == 1, kind
    numbers = dict(zip(page.locator("#numbers dt").all_inner_texts(), page.locator("#numbers dd").all_inner_texts()))
    prediction = page.evaluate("results[0].doc.predictions[0]")
    assert numbers["latitude"] == f"{prediction['lat']:.5f}" and numbers["longitude"] == f"{prediction['lon']:.5f}"
    assert numbers["error"].endswith("km") and numbers["90 % radius"].endswith("km")
    assert page.locator("#top tbody tr").count() == TOP
    assert "this model" in page.locator("#figures").inner_text() and page.locator("#error-map img").is_visible()
    assert problems == []
    assert requests and all(url.startswith(live_server + "/") for url in requests), requests
    if os.environ.get("GEOLOCATE_SCREENSHOT"):  # docs/serve.png: GEOLOCATE_SCREENSHOT=docs/serve.png pytest -k dropping
        page.screenshot(path=os.environ["GEOLOCATE_SCREENSHOT"])
