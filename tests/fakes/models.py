"""Made-up model pieces for predictor tests: H3 classes around a few cities, and a spy that counts
the rows of every forward pass."""

from __future__ import annotations

CITIES = {"Paris": (48.857, 2.352), "Versailles": (48.804, 2.130), "Saint-Denis": (48.936, 2.357)}


def classes_around(cities: dict[str, tuple[float, float]], per_city: int) -> list[dict]:
    """`per_city` real H3 resolution-7 cells near each city, as a sidecar's class records."""
    import h3

    classes = []
    for city, (lat, lon) in cities.items():
        for i in range(per_city):
            cell = h3.latlng_to_cell(lat + 0.02 * (i % 2), lon + 0.03 * (i // 2), 7)
            clat, clon = h3.cell_to_latlng(cell)
            classes.append({"cell_id": cell, "centroid_lat": clat, "centroid_lon": clon, "city": city})
    return classes


def count_forward_rows(monkeypatch, cls, method: str = "_forward") -> list[int]:
    """Record the rows of every forward pass a predictor class makes (`method`, whose last argument is the batch).

    Patched on the class, not the instance: an instance holding a closure over its own method is a
    reference cycle that keeps an ONNX session and its threads alive after the test, and a later
    fork in the same worker (the synthetic photos' pool) can deadlock on them.
    """
    rows, forward = [], getattr(cls, method)

    def counted(self, *args):
        rows.append(len(args[-1]))
        return forward(self, *args)

    monkeypatch.setattr(cls, method, counted)
    return rows
