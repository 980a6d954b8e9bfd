"""Which model answered: run id, profile, where its photos came from, the area it was trained on."""

from __future__ import annotations


def describe_model(meta: dict, engine: str, model: str | None = None) -> dict:
    """A short, JSON-ready description of the checkpoint behind a prediction (`model` names a composite one)."""
    classes = meta.get("classes") or []
    lats = [c["centroid_lat"] for c in classes]
    lons = [c["centroid_lon"] for c in classes]
    cities = sorted({str(c.get("city")) for c in classes if c.get("city")})
    sources = (meta.get("provenance") or {}).get("sources") or []
    config = meta.get("config") or {}
    return {
        "run_id": meta.get("run_id"),
        "profile": config.get("profile"),
        "model": model or (meta.get("model") or {}).get("name"),
        "engine": engine,
        "data_sources": sources,
        "synthetic": "synthetic" in sources,
        "classes": len(classes),
        "cities": len(cities),
        "bbox": [min(lons), min(lats), max(lons), max(lats)] if classes else None,
    }


def model_line(about: dict) -> str:
    """One line for the console: 'model: run … (profile …, resnet18 via onnx), mapillary photos, 13 cells in 5 cities (…)'.

    A run trained without a named profile (the project's own config.toml) says nothing of one, and
    an area without city names (imported photos) counts its cells only.
    """
    sources = ", ".join(about["data_sources"]) or "unknown"
    box = about["bbox"]
    area = f"lon {box[0]:.2f}…{box[2]:.2f}, lat {box[1]:.2f}…{box[3]:.2f}" if box else "unknown area"
    how = ", ".join(p for p in (f"profile {about['profile']}" if about.get("profile") else None,
                                f"{about['model']} via {about['engine']}") if p)
    cells = f"{about['classes']} cells" + (f" in {about['cities']} cities" if about.get("cities") else "")
    return f"model: run {about['run_id'] or '?'} ({how}), {sources} photos, {cells} ({area})"
