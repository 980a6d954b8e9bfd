"""What a checkpoint sidecar may say, checked before anything it describes is built.

A sidecar travels with the weights (releases, exports, downloads) and may have been edited, so
`load_checkpoint` and the Predictor trust none of it: the model spec, the classes, the
preprocessing and the calibration are validated here with bounds, finite numbers and shapes
compared with the weights, before a model is allocated or a photo decoded. A `num_classes` of
1e9 would otherwise ask for gigabytes, an `input_size` of 60000² would resize every photo to
it, a `std` of 0 divides by zero and a temperature of 0 prints NaN into `--json`.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError, field_validator

from geolocate.errors import UserError

MAX_CLASSES = 1_000_000  # H3 resolution 7 over the whole Earth is ~100 million; no model here nears 1e6
MAX_SIDE = 4096  # the largest input any registered backbone takes is 384 px
_Number = StrictFloat | StrictInt  # JSON numbers only: "2" or true is not a temperature


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Strict):
    """`sidecar["model"]`: what `create_model` is called with."""

    name: StrictStr = Field(min_length=1, max_length=200, description="Registered model name.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Options the model was built with.")
    num_classes: StrictInt = Field(ge=0, le=MAX_CLASSES, description="Classifier outputs (0: an embedding or a regressor).")

    @field_validator("kwargs")
    @classmethod
    def _option_names(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        # Options become keyword arguments: a key like "\n" is no option name, and would reach the error line raw.
        bad = [key for key in kwargs if not key.isidentifier()]
        if bad:
            raise ValueError(f"model options must be names, not {', '.join(repr(k) for k in bad[:3])}")
        return kwargs


class Preprocessing(_Strict):
    """`sidecar["preprocessing"]`: the model's input contract (timm's data config)."""

    model_config = ConfigDict(extra="allow")  # timm adds keys over time; the ones used are checked
    input_size: tuple[Literal[3], StrictInt, StrictInt] = Field(description="(channels, height, width).")
    mean: tuple[_Number, _Number, _Number] = Field(description="Per-channel mean subtracted.")
    std: tuple[_Number, _Number, _Number] = Field(description="Per-channel std divided by (above 0).")
    interpolation: StrictStr = Field("bilinear", max_length=40, description="Resize interpolation.")
    crop_pct: _Number = Field(0.875, gt=0.05, le=1.0, description="Share of the resized photo the centre crop keeps.")

    @field_validator("input_size")
    @classmethod
    def _side(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if not all(8 <= side <= MAX_SIDE for side in value[1:]):
            raise ValueError(f"input sides must be within 8..{MAX_SIDE} pixels")
        return value

    @field_validator("mean", "std")
    @classmethod
    def _finite(cls, value: tuple[float, ...], info) -> tuple[float, ...]:
        if not all(math.isfinite(v) for v in value):
            raise ValueError("must be finite numbers")
        if info.field_name == "std" and not all(v > 0 for v in value):
            raise ValueError("std must be above 0 (it divides every pixel)")
        return value


class ClassEntry(_Strict):
    """One class: an H3 cell (or region) and the centroid predicted for it."""

    model_config = ConfigDict(extra="allow")  # n_samples, parent... are informative
    cell_id: StrictStr = Field(min_length=1, max_length=100)
    centroid_lat: _Number = Field(ge=-90, le=90)
    centroid_lon: _Number = Field(ge=-180, le=180)
    city: StrictStr | None = None


class TtaRecord(BaseModel):
    """`sidecar["tta"]`: whether evaluate kept the test-time views (`evaluate.tta`), and how many crops."""

    model_config = ConfigDict(extra="allow")  # the setting and val's figures are informative
    enabled: StrictBool = Field(False, description="Predict averages each photo's views (on when val said it helps).")
    crops: Literal[1, 3] = Field(3, description="Crops per photo, each with its mirror image (`data.tta.CROPS`).")

    @property
    def crops_run(self) -> int:
        """Crops predict runs per photo: `crops` when enabled, 0 (one centre crop) otherwise."""
        return self.crops if self.enabled else 0


class RetrievalRecord(BaseModel):
    """`sidecar["retrieval"]`: whether val kept retrieval refinement (`evaluate.refine`), and its setting."""

    model_config = ConfigDict(extra="allow")  # val's figures, the index's size and digest are informative
    enabled: StrictBool = Field(False, description="Predict refines positions with the index beside the weights.")
    top_cells: StrictInt = Field(5, ge=1, le=MAX_CLASSES, description="Top cells whose indexed photos are searched.")
    neighbours: StrictInt = Field(10, ge=1, le=10_000, description="Nearest indexed photos that place the photo.")
    # `evaluate.retrieval.METHODS` (a layer above this one; a test keeps the two equal)
    method: Literal["cluster", "median", "medoid"] = Field("cluster", description="How the neighbours place it.")
    index_sha256: StrictStr | None = Field(None, max_length=64, description="Digest of the index file beside the weights.")


class PredictionSidecar(BaseModel):
    """The fields `predict` uses; a stage's own keys (config, metrics, ...) are left as they are."""

    model_config = ConfigDict(extra="allow")
    model: ModelSpec
    classes: list[ClassEntry] = Field(min_length=1, max_length=MAX_CLASSES)
    preprocessing: Preprocessing
    temperature: _Number = Field(1.0, gt=1e-3, le=1e3, description="Softmax temperature fitted on val.")
    position: Literal["top1", "weighted", "median"] = "top1"
    weighted_topk: StrictInt = Field(5, ge=1, le=1000)
    tta: TtaRecord | None = None  # absent: a checkpoint evaluated before TTA existed predicts from one crop
    retrieval: RetrievalRecord | None = None  # absent: a checkpoint evaluated before retrieval predicts without it


def check_model_spec(sidecar: Mapping[str, Any], state: Mapping[str, Any], source: object) -> ModelSpec:
    """The sidecar's model spec, validated and matched against the weights' shapes.

    Raises:
        UserError: a missing or malformed spec, or a `num_classes` no weight tensor has (checked
            before the model is built, so a tampered count cannot allocate gigabytes).
    """
    spec = _validated(ModelSpec, sidecar.get("model"), source, "model")
    classes = sidecar.get("classes")
    if isinstance(classes, list) and classes and len(classes) != spec.num_classes:
        raise UserError(f"{source}: model.num_classes is {spec.num_classes} but the sidecar lists {len(classes)} classes")
    if spec.num_classes and not any(spec.num_classes in tuple(getattr(t, "shape", ())) for t in state.values()):
        raise UserError(f"{source}: model.num_classes is {spec.num_classes}, which no weight tensor has as a dimension; "
                        f"the sidecar does not describe these weights")
    return spec


def check_prediction_sidecar(sidecar: Mapping[str, Any], source: object = "checkpoint sidecar") -> PredictionSidecar:
    """Validate what the Predictor reads (classes with centroids, preprocessing, calibration)."""
    checked = _validated(PredictionSidecar, sidecar, source, None)
    if len(checked.classes) != checked.model.num_classes:
        raise UserError(f"{source}: {len(checked.classes)} classes for a model with {checked.model.num_classes} outputs")
    return checked


def check_retrieval_record(sidecar: Mapping[str, Any], source: object = "checkpoint sidecar") -> RetrievalRecord | None:
    """The sidecar's retrieval record validated, before the index it names is opened (None: there is none)."""
    record = sidecar.get("retrieval")
    return None if record is None else _validated(RetrievalRecord, record, source, "retrieval")


def _validated(model: type[BaseModel], value: Any, source: object, where: str | None):
    if not isinstance(value, Mapping):
        raise UserError(f"{source}: {where or 'the sidecar'} must be a JSON object, not {type(value).__name__}")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in ([where] if where else []) + list(error["loc"]))
        shown = repr(error.get("input"))
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise UserError(f"{source}: bad sidecar field {key!r}: {shown} ({error['msg']})") from None
