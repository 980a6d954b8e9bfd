"""Which model answered: run id, profile, where its photos came from, the area it was trained on."""

from __future__ import annotations


def describe_model(meta: dict, engine: str) -> dict:
    """A short, JSON-ready description of the checkpoint behind a prediction."""
    classes = meta.get("classes") or []
    lats = [c["centroid_lat"] for c in classes]
    lons = [c["centroid_lon"] for c in classes]
    cities = sorted({str(c.get("city")) for c in classes if c.get("city")})
    sources = (meta.get("provenance") or {}).get("sources") or []
    return {
        "run_id": meta.get("run_id"),
        "profile": (meta.get("config") or {}).get("profile"),
        "model": (meta.get("model") or {}).get("name"),
        "engine": engine,
        "data_sources": sources,
        "synthetic": "synthetic" in sources,
        "classes": len(classes),
        "cities": len(cities),
        "bbox": [min(lons), min(lats), max(lons), max(lats)] if classes else None,
    }


def model_line(about: dict) -> str:
    """One line for the console: 'model run … (profile …, resnet18 via onnx), trained on … photos of N cities'."""
    sources = ", ".join(about["data_sources"]) or "unknown"
    box = about["bbox"]
    area = f"lon {box[0]:.2f}…{box[2]:.2f}, lat {box[1]:.2f}…{box[3]:.2f}" if box else "unknown area"
    return (f"model: run {about['run_id'] or '?'} (profile {about['profile'] or '?'}, {about['model']} via {about['engine']}), "
            f"{sources} photos, {about['classes']} cells in {about['cities']} cities ({area})")
