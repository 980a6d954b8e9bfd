"""The page `geolocate serve` answers at `/`: one HTML file, its script and styles, all local.

The page's settings (the optional tile layer, whether the model takes four views) travel in a
`<script type="application/json">` block, which the Content-Security-Policy allows (it runs
nothing); the script itself is `static/app.js`.
"""

from __future__ import annotations

import json
from pathlib import Path

STATIC = Path(__file__).with_name("static")
_SETTINGS_MARK = "{{settings}}"


def page_settings(card: dict, settings) -> dict:
    """What the page's script needs before its first request."""
    return {"tile_url": settings.tile_url, "tile_attribution": settings.tile_attribution,
            "views": bool(card.get("views")), "bbox": card.get("bbox")}


def render_page(card: dict, settings) -> str:
    """The HTML of the page, its settings embedded as inert JSON."""
    text = json.dumps(page_settings(card, settings))
    # `<` and `&` escaped: nothing in the JSON can close the script block or open a tag.
    safe = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (STATIC / "page.html").read_text(encoding="utf-8").replace(_SETTINGS_MARK, safe)
