"""geolocate: learn where a street-level photo was taken.

`from geolocate import Geolocator` is the Python API (`geolocate.api`); it is imported on first
use, so `import geolocate` (and `geolocate --help`) stays light.
"""

__version__ = "0.1.0"
__all__ = ["Geolocator", "Result"]


def __getattr__(name: str):
    if name in ("Geolocator", "Result", "Batch"):
        from geolocate import api  # the package's facade: the one lazy import that looks up

        return getattr(api, name)
    raise AttributeError(f"module 'geolocate' has no attribute {name!r}")
