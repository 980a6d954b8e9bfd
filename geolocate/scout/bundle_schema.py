"""What a scout-sniper bundle (`scout_sniper.json`) may say, checked each time one is read.

A bundle travels with its checkpoints (releases, exports, copies of a run) and may have been
edited, so nothing in it is trusted: its phase names become file names (`root / phase`), its
weights multiply logits, its position settings choose the regions averaged and its radius table
is indexed by confidence. A hostile bundle is one line of error, never a traceback: a phase
`../../x` would load a checkpoint from elsewhere, a NaN weight would print NaN positions, a
string weight would end in a traceback deep in numpy, a `position_topk` of 1e9 is no count of
regions. The fields training leaves empty until a phase ends (weights, sniper, position) may be
absent or null; `bundle.require_bundle` says which phase is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from geolocate.artifacts.sidecar_schema import TtaRecord
from geolocate.errors import UserError
from geolocate.evaluate.position import POSITION_MODES

FORMAT = "geolocate.scout_sniper"
SCOUT_PHASES = ("scout-clip", "scout-convnext")  # the phases that train a scout; each names its checkpoint's files
SNIPER = "sniper"  # the sniper's phase and checkpoint name

_Weight = Annotated[float, Field(strict=True, ge=0, le=1e3, allow_inf_nan=False)]  # Σ weights acts as 1 / temperature
_Share = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
_Km = Annotated[float, Field(strict=True, ge=0, le=20_100, allow_inf_nan=False)]  # no two places are further apart


class RadiusTable(BaseModel):
    """`bundle["radius"]`: conformal radii per confidence band (`evaluate.conformal.fit_radius`)."""

    model_config = ConfigDict(extra="allow")  # n_val, ... are informative
    level: _Share
    edges: list[_Share] = Field(max_length=100)
    radius_km: list[_Km | None] = Field(min_length=1, max_length=101)

    @model_validator(mode="after")
    def _one_radius_per_band(self) -> "RadiusTable":
        if len(self.radius_km) != len(self.edges) + 1 or self.edges != sorted(self.edges):
            raise ValueError("needs sorted band edges and one radius per band (one more than the edges)")
        return self


class Bundle(BaseModel):
    """The fields the four-view predictor, evaluation and freeze read; the others are kept as they are."""

    model_config = ConfigDict(extra="allow")  # heads, val scores, provenance... are informative
    format: Literal[FORMAT]
    version: StrictInt = Field(1, ge=1)
    scouts: list[Literal[SCOUT_PHASES]] = Field(default_factory=list, max_length=len(SCOUT_PHASES))  # each a file name
    weights: list[_Weight] | None = None
    sniper: Literal[SNIPER] | None = None
    position: Literal[POSITION_MODES] | None = None
    position_topk: StrictInt | None = Field(None, ge=1, le=1000)
    radius: RadiusTable | None = None
    tta: TtaRecord | None = None  # absent (a bundle from before TTA): one centre crop a view

    @model_validator(mode="after")
    def _one_weight_per_scout(self) -> "Bundle":
        if len(set(self.scouts)) != len(self.scouts):
            raise ValueError("each scout is named once")
        if self.weights is not None and (not self.scouts or len(self.weights) != len(self.scouts)):
            raise ValueError(f"{len(self.weights)} ensemble weights for {len(self.scouts)} scouts (one weight per scout)")
        return self


def checked_bundle(path: Path) -> dict[str, Any]:
    """The bundle at `path`, parsed and validated (unknown keys kept).

    Raises:
        UserError: unreadable, not JSON, or a field out of its type or range, in one line naming the field.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(f"{path} is not a readable scout-sniper bundle ({_why(exc)})") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path} is not a scout-sniper bundle (a JSON object is expected, not {type(doc).__name__})")
    try:
        Bundle.model_validate(doc)
    except ValidationError as exc:
        raise UserError(f"{path}: {_first_error(exc)}") from None
    return doc


def _why(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}"
    return str(getattr(exc, "strerror", None) or exc).splitlines()[0][:200]


def _first_error(exc: ValidationError) -> str:
    """'bad bundle field 'weights.0': nan (Input should be a finite number)', or a rule across fields."""
    error = exc.errors()[0]
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:  # a rule over several fields: the input is the whole bundle, too long to show
        return f"bad bundle: {message}"
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"bad bundle field {'.'.join(str(part) for part in error['loc'])!r}: {shown} ({message})"
