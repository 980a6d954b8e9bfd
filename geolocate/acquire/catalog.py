"""Where to fetch: the France v1.0 catalog (50 cities, 10 batches of 5) and the US catalog.

The French catalog mixes large metropolises, medium cities and eight less dense areas, the
card's remedy for "Paris bias": each batch holds one or two metropolises, a few medium cities
and usually one rural prefecture. Boxes are centred on the city and sized by kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from geolocate.errors import UserError
from geolocate.paths import slug

Kind = Literal["metropolis", "medium", "rural"]
# Half-height of the box in degrees of latitude per kind (≈ 6.7, 3.9 and 2.2 km).
_HALF_DEG = {"metropolis": 0.06, "medium": 0.035, "rural": 0.02}


@dataclass(frozen=True)
class Area:
    """One fetchable area: a name, a bbox (min_lon, min_lat, max_lon, max_lat), a kind and a batch."""

    name: str
    bbox: tuple[float, float, float, float]
    kind: Kind
    batch: str
    region: str = ""

    @property
    def center(self) -> tuple[float, float]:
        """(lat, lon) of the box centre."""
        return (self.bbox[1] + self.bbox[3]) / 2, (self.bbox[0] + self.bbox[2]) / 2


def _area(name: str, lat: float, lon: float, kind: Kind, batch: str, region: str = "") -> Area:
    half_lat = _HALF_DEG[kind]
    half_lon = half_lat / math.cos(math.radians(lat))
    bbox = (round(lon - half_lon, 5), round(lat - half_lat, 5), round(lon + half_lon, 5), round(lat + half_lat, 5))
    return Area(name, bbox, kind, batch, region)


_FR_ROWS: list[tuple[str, float, float, Kind]] = [
    # batch 01
    ("Paris", 48.8566, 2.3522, "metropolis"), ("Lyon", 45.7640, 4.8357, "metropolis"),
    ("Rennes", 48.1173, -1.6778, "medium"), ("Dijon", 47.3220, 5.0415, "medium"), ("Gap", 44.5594, 6.0786, "rural"),
    # batch 02
    ("Marseille", 43.2965, 5.3698, "metropolis"), ("Nantes", 47.2184, -1.5536, "metropolis"),
    ("Angers", 47.4784, -0.5632, "medium"), ("Clermont-Ferrand", 45.7772, 3.0870, "medium"), ("Aurillac", 44.9264, 2.4396, "rural"),
    # batch 03
    ("Toulouse", 43.6047, 1.4442, "metropolis"), ("Saint-Étienne", 45.4397, 4.3872, "metropolis"),
    ("Nîmes", 43.8367, 4.3601, "medium"), ("Le Mans", 48.0061, 0.1996, "medium"), ("Mende", 44.5181, 3.5006, "rural"),
    # batch 04
    ("Bordeaux", 44.8378, -0.5792, "metropolis"), ("Reims", 49.2583, 4.0317, "medium"),
    ("Aix-en-Provence", 43.5297, 5.4474, "medium"), ("Brest", 48.3904, -4.4861, "medium"), ("Guéret", 46.1713, 1.8717, "rural"),
    # batch 05
    ("Lille", 50.6292, 3.0573, "metropolis"), ("Tours", 47.3941, 0.6848, "medium"),
    ("Amiens", 49.8941, 2.2958, "medium"), ("Limoges", 45.8336, 1.2611, "medium"), ("Millau", 44.0986, 3.0784, "rural"),
    # batch 06
    ("Nice", 43.7102, 7.2620, "metropolis"), ("Strasbourg", 48.5734, 7.7521, "metropolis"),
    ("Annecy", 45.8992, 6.1294, "medium"), ("Perpignan", 42.6887, 2.8948, "medium"), ("Lannion", 48.7326, -3.4566, "rural"),
    # batch 07
    ("Montpellier", 43.6108, 3.8767, "metropolis"), ("Metz", 49.1193, 6.1757, "medium"),
    ("Besançon", 47.2378, 6.0241, "medium"), ("Orléans", 47.9030, 1.9093, "medium"), ("Saint-Flour", 45.0336, 3.0930, "rural"),
    # batch 08
    ("Grenoble", 45.1885, 5.7245, "metropolis"), ("Caen", 49.1829, -0.3707, "medium"),
    ("Mulhouse", 47.7508, 7.3359, "medium"), ("Nancy", 48.6921, 6.1844, "medium"), ("Digne-les-Bains", 44.0925, 6.2356, "rural"),
    # batch 09
    ("Toulon", 43.1242, 5.9280, "metropolis"), ("Le Havre", 49.4944, 0.1079, "medium"),
    ("La Rochelle", 46.1603, -1.1511, "medium"), ("Poitiers", 46.5802, 0.3404, "medium"), ("Pau", 43.2951, -0.3708, "medium"),
    # batch 10
    ("Rouen", 49.4432, 1.0999, "metropolis"), ("Bayonne", 43.4929, -1.4748, "medium"),
    ("Avignon", 43.9493, 4.8055, "medium"), ("Chambéry", 45.5646, 5.9178, "medium"), ("Ajaccio", 41.9192, 8.7386, "rural"),
]

FRANCE: tuple[Area, ...] = tuple(
    _area(name, lat, lon, kind, f"{i // 5 + 1:02d}") for i, (name, lat, lon, kind) in enumerate(_FR_ROWS)
)

# The US catalog is filled by `geolocate.acquire.catalog_us` (one area per contiguous state).
CATALOGS: dict[str, tuple[Area, ...]] = {"fr": FRANCE}


def catalog(name: str = "fr") -> tuple[Area, ...]:
    """All areas of catalog `name` ("fr" or "us")."""
    if name == "us" and "us" not in CATALOGS:
        from geolocate.acquire import catalog_us  # noqa: F401  (registers itself)
    if name not in CATALOGS:
        raise UserError(f"unknown catalog {name!r}; choose one of: fr, us")
    return CATALOGS[name]


def find_area(name: str, catalog_name: str = "fr") -> Area:
    """The area called `name`, matched case- and accent-insensitively ('saint-etienne' → Saint-Étienne)."""
    key = slug(name)
    for area in catalog(catalog_name):
        if slug(area.name) == key:
            return area
    import difflib

    names = [a.name for a in catalog(catalog_name)]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else _other_catalog_hint(key, catalog_name)
    raise UserError(f"no city {name!r} in the {catalog_name} catalog{hint}")


def _other_catalog_hint(key: str, catalog_name: str) -> str:
    """'; it is in the us catalog: add --catalog us' when another catalog has the city."""
    for other in sorted((set(CATALOGS) | {"fr", "us"}) - {catalog_name}):
        if any(slug(a.name) == key for a in catalog(other)):
            return f"; it is in the {other} catalog: add --catalog {other}"
    return "; `geolocate fetch --list` shows the catalog"


def batch_areas(batch: str, catalog_name: str = "fr") -> tuple[Area, ...]:
    """The areas of batch `batch` ('3' and '03' both work)."""
    key = batch.zfill(2)
    areas = tuple(a for a in catalog(catalog_name) if a.batch == key)
    if not areas:
        batches = sorted({a.batch for a in catalog(catalog_name)})
        raise UserError(f"no batch {batch!r} in the {catalog_name} catalog; batches: {', '.join(batches)}")
    return areas


def bbox_area(bbox: tuple[float, float, float, float], name: str) -> Area:
    """A user-given area; the box is checked for order and range."""
    min_lon, min_lat, max_lon, max_lat = bbox
    if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise UserError(f"bad --bbox {bbox}: expected MINLON,MINLAT,MAXLON,MAXLAT with min < max, in degrees")
    return Area(name, bbox, "medium", "custom")
