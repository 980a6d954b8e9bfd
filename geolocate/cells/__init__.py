"""Labels: H3 assignment, the sparse-cell policy, KPIs, and the class table."""

from geolocate.cells.classes import load_classes
from geolocate.cells.run import CellsResult, run_cells

__all__ = ["CellsResult", "load_classes", "run_cells"]
