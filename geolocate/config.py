"""One typed configuration for every command.

`config.toml` holds one table per stage and named profiles that deep-merge over them:
`--set` overrides beat the profile, which beats the base tables. Every field has a description
(`geolocate config --profile v1` prints the resolved values) and unknown keys are refused with
the nearest valid dotted key, so a typo never silently falls back to a default.

The project is the current directory: every command reads `./config.toml` when there is one
(`geolocate init` writes it, `geolocate config set` edits it), else the defaults packaged with
geolocate, and the `[paths]` it names are relative to that directory. A project file records the
profile it was made with (`profile = "v1"`); one without a `[profiles]` table can still be run
with `--profile` (the packaged profiles then merge over its values).
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from geolocate.errors import UserError
from geolocate.files import refuse_special_file

DEFAULT_CONFIG_NAME = "config.toml"
CONFIG_VERSION = 3  # the top-level `version` of config.toml; a file without one is this version
# Keys renamed from one config version to the next: {old version: {old dotted key: new dotted key}}.
CONFIG_RENAMES: dict[int, dict[str, str]] = {
    1: {"predict.model": "predict.checkpoint"},  # `model` names a registry architecture everywhere else
    2: {"model.second_scout": "scout.second_model", "model.second_weights": "scout.second_weights",  # the scout-sniper's own table
        "train.sniper_epochs": "scout.sniper_epochs", "train.sniper_offset_at": "scout.sniper_offset_at"},
}


_MAX_INT = 2**31 - 1  # no count, size or seed here needs more; 10**20 would overflow torch or numpy later
_MAX_DEPTH = 8  # tables in a config or keys in a --set: geolocate's deepest is eval.gates.<key>


class _Stage(BaseModel):
    # inf and NaN are refused everywhere (`train.lr=inf` trains nothing and says nothing).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_values(cls, value: Any, info) -> Any:
        # pydantic's lax mode reads `true` as 1 and accepts any int: `train.epochs=true` and
        # `train.batch_size=10**20` are mistakes, not values.
        if isinstance(value, bool) and not _takes_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError("expected a number or text, not true/false")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_INT:
            raise ValueError(f"too large (at most {_MAX_INT})")
        if isinstance(value, str) and "\0" in value:
            raise ValueError("contains a NUL character")
        return value


def _takes_bool(annotation: Any) -> bool:
    from typing import get_args

    return annotation is bool or any(_takes_bool(arg) for arg in get_args(annotation))


class PathsConfig(_Stage):
    data: Path = Field(Path("data"), description="Manifest, photos, cells, split (relative to the working directory).")
    runs: Path = Field(Path("runs"), description="One directory per training run; `runs/latest` is the newest.")
    models: Path = Field(Path("models"), description="The global best model across runs.")
    releases: Path = Field(Path("releases"), description="Frozen releases written by `geolocate freeze`.")
    exports: Path = Field(Path("exports"), description="Snapshot archives written by `geolocate export`.")


class PanoramaxConfig(_Stage):
    api_url: str = Field("https://api.panoramax.xyz/api", description="A Panoramax API root: the federated catalogue, or one instance (e.g. https://panoramax.ign.fr/api). No token needed.")
    limit: int = Field(1000, ge=1, le=10000, description="Items asked per /search request; a full answer means truncation, so the box is split (no pagination).")
    tile_deg: float = Field(0.01, gt=0, le=1, description="Side of a search box in degrees.")
    asset: Literal["sd", "thumb", "hd"] = Field("sd", description="Which picture to download: sd (2048 px), thumb (small) or hd (the original, large).")
    include_panos: bool = Field(True, description="Keep 360° captures (`prepare` cuts each into perspective views).")
    concurrency: int = Field(8, ge=1, le=64, description="Requests in flight at once (polite: instances are run by volunteers and public bodies).")
    requests_per_minute: int = Field(1200, ge=1, description="Ceiling on the request rate to the API.")

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_http_url(value, "https://api.panoramax.xyz/api")


class FetchConfig(_Stage):
    source: Literal["mapillary", "panoramax"] = Field("mapillary", description="Where `geolocate fetch` gets photos (mapillary needs MAPILLARY_TOKEN; panoramax needs none).")
    panoramax: PanoramaxConfig = Field(default_factory=PanoramaxConfig, description="Panoramax settings (the shared retry, backoff, timeout and sampling keys apply too).")
    api_url: str = Field("https://graph.mapillary.com", description="Mapillary Graph API root; point it at a mirror or a test server.")
    catalog: Literal["fr", "us"] = Field("fr", description="Which city catalog `--city` and `--batch` read.")
    thumb_size: Literal[256, 1024, 2048, "original"] = Field(1024, description="Which thumbnail to download (thumb_<size>_url).")
    limit: int = Field(2000, ge=1, le=2000, description="Items asked per bbox request; a full answer means truncation, so the box is split.")
    tile_deg: float = Field(0.01, gt=0, le=0.01, description="Side of a search box in degrees; the API rejects boxes larger than 0.01°.")
    max_split_depth: int = Field(4, ge=0, le=8, description="How many times a truncated box may be split into four.")
    max_per_city: int = Field(2500, ge=1, description="Photos kept per area, sampled evenly over boxes and sequences.")
    include_panos: bool = Field(False, description="Keep 360° panoramas (excluded by default: they look nothing like a phone photo).")
    concurrency: int = Field(16, ge=1, le=256, description="HTTP requests in flight at once.")
    requests_per_minute: int = Field(6000, ge=1, description="Ceiling on request rate, below Mapillary's search limit.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries for 429, 5xx, timeouts and connection errors before a box or photo is marked failed.")
    backoff_s: float = Field(0.5, ge=0, description="First backoff delay; doubles each retry, with jitter.")
    backoff_max_s: float = Field(60.0, ge=0, description="Longest backoff delay (a Retry-After header is honoured up to this).")
    timeout_s: float = Field(30.0, gt=0, description="Per-request timeout in seconds.")
    deadline_s: float = Field(45.0, gt=0, description="Overall time limit of one request, answer included (timeout_s bounds each read; a server dripping bytes is cut off here).")
    max_answer_mb: float = Field(64.0, gt=0, description="Largest API answer read (JSON, decompressed); a larger one fails that request.")
    max_photo_mb: float = Field(50.0, gt=0, description="Largest photo downloaded (decompressed); a larger one fails that photo.")
    seed: int = Field(0, description="Seed for the even sampling of photos within an area.")
    start_captured_at: str | None = Field(None, description="Only photos captured on or after this ISO 8601 date.")
    end_captured_at: str | None = Field(None, description="Only photos captured before this ISO 8601 date.")

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_http_url(value, "https://graph.mapillary.com")


def _check_http_url(value: str, example: str, key: str = "api_url") -> str:
    # Refused here, not at the first request, so a typo costs one line instead of a failed run.
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key} must be an http:// or https:// URL with a host, e.g. {example}")
    if parts.username or parts.password or "MLY|" in value or "token" in parts.query.lower():
        # the URL is saved into every run's config.json: a credential in it would ship with a release
        raise ValueError(f"{key} must not carry a token or a password; keep the token in MAPILLARY_TOKEN only")
    return value


class LocalConfig(_Stage):
    name: str = Field("local", description="Area name (the manifest's `city`) of imported photos unless `--name` says otherwise.")
    license: str | None = Field(None, description="Licence recorded for imported photos whose EXIF has no Copyright (`--license` overrides).")
    sequence_gap_s: float = Field(60.0, ge=0, description="Photos of one camera at most this many seconds apart may share a sequence.")
    sequence_distance_m: float = Field(100.0, ge=0, description="...and at most this many metres apart (sequences keep `split` leakage-free).")


class SynthConfig(_Stage):
    n_photos: int = Field(3000, ge=10, description="Photos the synthetic generator draws.")
    size: int = Field(160, ge=32, le=1024, description="Side in pixels of each synthetic photo.")
    seed: int = Field(0, description="Seed: the same seed gives the same data set, byte for byte.")
    batches: list[str] = Field(default_factory=lambda: ["01", "02"], description="Catalog batches whose cities the synthetic drives fall in.")
    photos_per_sequence: int = Field(12, ge=1, description="Photos in one synthetic sequence (one stretch of a drive).")
    sequences_per_drive: int = Field(3, ge=1, description="Sequences one synthetic drive is cut into (as mapillary_tools does).")
    spread_km: float = Field(6.0, gt=0, description="How far from the city centre drives start, in km.")
    multiview: bool = Field(False, description="Emit four cardinal views per location (the scout-sniper layout).")


class DataConfig(_Stage):
    max_size: int = Field(512, ge=32, description="Longest side of the processed copy `prepare` writes.")
    jpeg_quality: int = Field(85, ge=30, le=100, description="JPEG quality of processed copies.")
    prepare_workers: int = Field(0, ge=0, description="Processes for `prepare` (0 = one per CPU core).")
    num_workers: int = Field(2, ge=0, description="DataLoader workers for training and evaluation.")
    image_size: int | None = Field(None, ge=32, description="Input size override; by default the backbone's pretrained config decides.")
    scale_min: float = Field(0.7, gt=0, le=1, description="Smallest area fraction of the random resized crop (mild).")
    rotation_deg: float = Field(10.0, ge=0, le=45, description="Random rotation range (±degrees).")
    color_jitter: float = Field(0.2, ge=0, le=1, description="Brightness/contrast/saturation jitter strength.")
    pano_views: int = Field(4, ge=0, le=12, description="Perspective views `prepare` cuts from each 360° capture, evenly around (0 = keep the capture whole).")
    pano_fov_deg: float = Field(90.0, gt=10, lt=180, description="Horizontal and vertical field of view of each view cut from a 360° capture.")


# "auto": chosen from the photos by `cells.resolution.auto_classes` (one rule for cells and regions).
AUTO = "auto"


def auto_or_int(value: Any, low: int, high: int) -> Any:
    """`value` when it is "auto" or an integer in [low, high]; ValueError (one clear message) otherwise."""
    if value == AUTO:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if not low <= value <= high:
            allowed = f"at least {low}" if high == _MAX_INT else f"from {low} to {high}"
            raise ValueError(f"use an integer {allowed}, or \"auto\"")
        return value
    raise ValueError('expected an integer or "auto"')


def _auto_or_int_validator(field: str, low: int, high: int):
    """A pydantic validator of `field` by `auto_or_int` (the error then names the key, not a union member)."""
    return field_validator(field, mode="before")(lambda cls, value: auto_or_int(value, low, high))


class CellsConfig(_Stage):
    resolution: int | Literal["auto"] = Field("auto", description="H3 resolution of the classes; auto: the finest one whose cells of >= 5 places hold >= 70 % of the places (`cells` says which).")
    min_samples: int | Literal["auto"] = Field("auto", description="Photos a cell needs to be a class; auto: 5 places' worth of photos (5 x the photos per place, e.g. 20 for 360 captures cut into 4 views).")
    sparse: Literal["merge-parent", "drop"] = Field("merge-parent", description="What happens to cells under min_samples.")
    max_merge_levels: int = Field(15, ge=0, le=15, description="How many parent levels a sparse cell may climb when merging; climbing to resolution 0 keeps every photo (a cell still sparse there joins the nearest class), fewer levels drop what is still sparse.")
    max_dominance: float = Field(0.25, gt=0, le=1, description="Largest share of train one class may hold (downsampled above it).")
    res8_min_images: int = Field(150_000, ge=0, description="Photos needed before resolution 8 is allowed (else too sparse).")
    imported: Literal["auto", "as-set"] = Field("auto", description="Photos a user imported (geolocate import): auto sizes their classes by the auto rule (resolution and min_samples auto, sparse cells merged up to resolution 0) whatever a profile fixed for its own catalog (France v1: resolution 7, 150 photos); as-set keeps the values above. --res and --set cells.* always win.")

    _resolution = _auto_or_int_validator("resolution", 0, 15)
    _min_samples = _auto_or_int_validator("min_samples", 1, _MAX_INT)


class SplitConfig(_Stage):
    train: float = Field(0.8, gt=0, lt=1, description="Share of groups in train. The three shares sum to 1; `--set` one or two and the others rescale in proportion.")
    val: float = Field(0.1, gt=0, lt=1, description="Share of groups in validation (above 0: training selects its best epoch on val).")
    test: float = Field(0.1, gt=0, lt=1, description="Share of groups in test (above 0: evaluation reports on test).")
    seed: int = Field(0, description="Seed: the same seed and data give the same split.")
    group_by: Literal["sequence", "drive"] = Field("sequence", description="Unit that never straddles splits: a sequence, or a drive (creator + capture day).")
    buffer: bool = Field(False, description="Drop train photos within split.near_m of a val or test photo of another sequence (a spatial buffer): streets driven by several sequences then leave no near-duplicate in test.")
    near_m: float = Field(25.0, ge=0, description="Radius of the near-duplicate audit: test photos with a train photo this close.")
    max_near_share: float = Field(0.01, ge=0, le=1, description="Largest share of test photos with a train photo of another sequence within near_m that `sanity` accepts; above it the test set measures memory, not geolocation.")

    @field_validator("val", "test", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        # Said before pydantic's generic "greater than 0", so the user learns why 0 is refused.
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            raise ValueError("evaluation needs val and test photos: use a share above 0, e.g. 0.1")
        return value


class ModelConfig(_Stage):
    name: str = Field("resnet18", description="Registered model name (`geolocate models` lists them).")
    pretrained: bool = Field(True, description="Start from pretrained weights (hub when online, or `weights`).")
    weights: Path | None = Field(None, description="Local weights file (safetensors or a plain state dict) for offline machines.")
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout before the classifier.")
    freeze_backbone: bool = Field(False, description="Train only the heads, on cached backbone features (France v1: the linear probe unless `model.head` = finetune).")
    train_last_n_blocks: int | None = Field(None, ge=0, description="With a frozen backbone, unfreeze its last N blocks.")
    fusion: Literal["transformer", "mean", "probe"] = Field("transformer", description="Multi-view fusion of per-view embeddings (probe: a linear probe on the standardised mean of L2-normalised views).")
    head: Literal["auto", "probe", "finetune"] = Field("auto", description="What trains: auto (on small data, chosen on val among train.small_data_heads; otherwise a fine-tune for France v1, a probe when its backbone is frozen without train_last_n_blocks, and model.fusion for scout-sniper), probe (a linear head on cached frozen features, seconds) or finetune (the backbone trains too, or its last model.train_last_n_blocks).")
    fusion_layers: int = Field(2, ge=1, description="Transformer fusion layers.")
    fusion_heads: int = Field(8, ge=1, description="Transformer fusion attention heads.")
    fusion_dim: int = Field(512, ge=8, description="Width of the fusion transformer (embeddings are projected to it).")


SCOUT_SNIPER_PHASES = ("scout-clip", "scout-convnext", "ensemble", "sniper")  # the scout-sniper's phases, in training order
TRAIN_PHASES = (*SCOUT_SNIPER_PHASES, "all")
DEVICE_PATTERN = r"^(auto|cpu|cuda|cuda:\d+|mps)$"
_DEVICE_HELP = "auto (cuda when available, else cpu), cpu, cuda, cuda:N or mps."


class TrainConfig(_Stage):
    epochs: int = Field(30, ge=1, description="Maximum epochs.")
    device: str = Field("auto", pattern=DEVICE_PATTERN, description=f"Device to train on: {_DEVICE_HELP} Under torchrun, cuda means each rank's own GPU.")
    batch_size: int = Field(64, ge=1, description="Images per step (per process under torchrun).")
    lr: float = Field(3e-4, gt=0, description="Peak learning rate (AdamW).")
    backbone_lr_mult: float = Field(1.0, gt=0, description="Learning-rate multiplier of pretrained backbone parameters.")
    weight_decay: float = Field(0.05, ge=0, description="AdamW weight decay (not applied to norms and biases).")
    warmup_epochs: float = Field(1.0, ge=0, description="Linear warm-up before the cosine schedule.")
    grad_clip: float | None = Field(1.0, gt=0, description="Clip the gradient norm to this (none when unset).")
    amp: Literal["auto", "bf16", "fp16", "off"] = Field("auto", description="Mixed precision on CUDA (auto: bf16 where supported, else fp16).")
    channels_last: bool = Field(True, description="channels_last memory format on CUDA.")
    seed: int = Field(0, description="Seed for weights, data order and augmentation.")
    seeds: int = Field(1, ge=1, description="Train this many seeds and report mean ± std (`--seeds`).")
    patience: int = Field(5, ge=0, description="Early stopping: epochs without a better val epoch, for every trainer (France v1's fine-tune and probe, the four-view heads and fine-tune, the sniper; train/fitting.py); 0 turns it off.")
    class_weights: Literal["auto", "on", "off"] = Field("auto", description="Inverse-frequency class weights: auto turns them on above the threshold.")
    class_weight_threshold: float = Field(3.0, ge=1, description="Imbalance (largest / smallest class) above which auto uses class weights.")
    class_weight_sqrt: bool = Field(True, description="Use the square root of inverse frequency (gentler).")
    geo_loss: bool = Field(True, description="Haversine label smoothing over cells (the geo loss).")
    geo_tau_km: float = Field(2.5, gt=0, description="Temperature of the geo loss in km (the card tunes 1.5 → 5.0).")
    geo_mix_ce: float = Field(0.4, ge=0, le=1, description="Weight of hard-label CE in the geo loss (the card tunes 0.25 → 0.55).")
    max_steps_per_epoch: int | None = Field(None, ge=1, description="Cap on steps per epoch (quick checks).")
    cpu_threads: int | None = Field(None, ge=1, description="torch threads when training on the CPU (unset: torch's default). 1 is fastest for tiny models.")
    phase: Literal[TRAIN_PHASES] | None = Field(None, description="Scout-sniper phase to train.")
    small_data: int = Field(2000, ge=0, description="Below this many train photos (France v1) or train locations (scout-sniper), model.head = auto chooses the head on val among small_data_heads.")
    small_data_heads: list[Literal["probe", "mean", "transformer", "finetune", "knn", "knn+probe"]] = Field(["probe", "mean", "transformer", "knn", "knn+probe"], min_length=1, description="Candidate heads on small data: single-photo runs use probe / finetune / knn / knn+probe, four-view runs probe / mean / transformer / finetune / knn / knn+probe (knn: the k nearest train photos or locations vote across cells; knn+probe mixes those votes with the probe, the mix chosen on val); finetune costs a full training (hours on a CPU).")


class ScoutConfig(_Stage):
    """The four-view scout-sniper's own settings (the first scout is `model`; `train.phase` names the system)."""

    second_model: str = Field("convnextv2_large", description="The second scout's registered model (phase scout-convnext).")
    second_weights: Path | None = Field(None, description="Local weights of the second scout (like `model.weights` for the first).")
    sniper_epochs: int = Field(30, ge=1, description="Epochs of the residual regressor (on cached features).")
    sniper_offset_at: Literal["true", "predicted"] = Field("true", description="Region whose centroid the sniper's training offsets start from.")


class GatesConfig(_Stage):
    accuracy_min: float = Field(0.50, ge=0, le=1, description="Test top-1 accuracy must be at least this.")
    median_km_max: float = Field(1.0, gt=0, description="Test median error must be below this (km).")
    p90_km_max: float = Field(5.0, gt=0, description="Test p90 error must be below this (km).")
    max_std_km: float = Field(0.25, ge=0, description="With the fixed thresholds (absolute): std of val median km over the last epochs must be at most this.")
    max_std_share: float = Field(0.25, ge=0, description="Otherwise (an area judged against its baselines): that std must be at most this share of those epochs' mean val median km.")
    absolute: bool = Field(False, description="Apply the fixed accuracy/median/p90 thresholds above (France v1's card); off, the area's own baselines set the bar.")
    beat_baselines: bool = Field(True, description="Test median and p90 km must be below the best trivial baseline's (majority class or train centroid).")


class EvalConfig(_Stage):
    position: Literal["auto", "top1", "weighted", "median"] = Field("auto", description="Predicted position: top-1 centroid, probability-weighted mean of the top-k, their spherical geometric median (least expected distance), or whichever val ranks best.")
    weighted_topk: int = Field(5, ge=1, le=1000, description="Cells in the probability-weighted and the geometric-median positions (1 to 1000, the bound a checkpoint or bundle is checked against).")
    stability_last_k: int = Field(5, ge=2, description="Epochs whose val median km the stability gate looks at.")
    calibrate: bool = Field(True, description="Fit temperature scaling on val.")
    ece_bins: int = Field(15, ge=2, description="Bins of the expected calibration error.")
    radius_level: float = Field(0.9, gt=0, lt=1, description="Probability that the true place lies within a prediction's credible radius (split-conformal on val).")
    radius_bands: int = Field(3, ge=1, description="Confidence bands, each with its own conformal radius (fewer when val is small).")
    retrieval: bool = Field(True, description="Index the train photos' embeddings and refine positions by retrieval when that is better on val.")
    tta: Literal["auto", "on", "off"] = Field("auto", description="Test-time augmentation: each photo also seen as 3 crops and their mirror images (6 views), logits and embeddings averaged; auto: on when val says it helps. predict and the ONNX path follow what evaluate chose (four-view: what the ensemble phase chose, per view photo).")
    gates: GatesConfig = Field(default_factory=GatesConfig, description="The release gates, each PASS or FAIL.")
    knn_baseline: bool = Field(True, description="Score 1-NN and 5-NN on the frozen backbone's embeddings beside the model (cached in data/features/).")


class PredictConfig(_Stage):
    top: int = Field(5, ge=1, description="Classes shown per photo.")
    checkpoint: str = Field("best", description="Trained model `predict` uses: a run, a release, `best` (the global best) or a checkpoint file.")
    device: str = Field("cpu", pattern=DEVICE_PATTERN, description=f"Device to predict on: {_DEVICE_HELP}")
    batch_size: int = Field(32, ge=1, description="Photos per forward pass in batch mode.")


class ViewsConfig(_Stage):
    radius_m: float = Field(30.0, gt=0, description="Photos within this distance form one location.")
    tolerance_deg: float = Field(30.0, gt=0, le=45, description="A photo is a cardinal view when its compass angle is this close to 0/90/180/270.")


class RegionsConfig(_Stage):
    source: Literal["column", "h3"] = Field("h3", description="Region labels from a table column (e.g. a US state) or coarse H3 cells.")
    column: str = Field("region", description="Column holding the region label when source = column.")
    h3_resolution: int | Literal["auto"] = Field("auto", description="H3 resolution of regions when source = h3; auto: the same rule as cells.resolution, on locations.")
    min_samples: int | Literal["auto"] = Field("auto", description="Locations a region needs; auto: 5. With source = h3 a sparse cell merges into its parent instead of being dropped.")

    _resolution = _auto_or_int_validator("h3_resolution", 0, 15)
    _min_samples = _auto_or_int_validator("min_samples", 1, _MAX_INT)


class ServeConfig(_Stage):
    host: str = Field("127.0.0.1", description="Address `geolocate serve` binds: 127.0.0.1 is this machine only; 0.0.0.0 opens it to the network (it says so).")
    port: int = Field(8000, ge=0, le=65535, description="TCP port of `geolocate serve` (0 picks a free one).")
    max_upload_mb: float = Field(25.0, gt=0, le=1024, description="Largest upload accepted, in MB; a larger request is answered 413.")
    tile_url: str | None = Field(None, description="Optional online basemap tiles, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png; unset, the page uses only the vendored country outlines and needs no network.")
    tile_attribution: str = Field("", description="Attribution shown under the tile layer (required by most tile providers).")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the JSON API from another site's page (CORS); empty: none.")

    @field_validator("tile_url")
    @classmethod
    def _tile_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        return _check_http_url(value, "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "tile_url")


class GeolocateConfig(BaseModel):
    """The whole resolved configuration, one table per stage."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(CONFIG_VERSION, description="Config format version: older files are migrated, newer ones refused.")
    paths: PathsConfig = Field(default_factory=PathsConfig, description="Where things live.")
    fetch: FetchConfig = Field(default_factory=FetchConfig, description="`geolocate fetch`.")
    synth: SynthConfig = Field(default_factory=SynthConfig, description="`geolocate synth`.")
    local: LocalConfig = Field(default_factory=LocalConfig, description="`geolocate import` (your own photos).")
    data: DataConfig = Field(default_factory=DataConfig, description="`prepare` and data loading.")
    cells: CellsConfig = Field(default_factory=CellsConfig, description="`geolocate cells`.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="`geolocate split`.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The model.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="`geolocate train`.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="`geolocate evaluate`.")
    predict: PredictConfig = Field(default_factory=PredictConfig, description="`geolocate predict`.")
    views: ViewsConfig = Field(default_factory=ViewsConfig, description="Multi-view locations (scout-sniper).")
    regions: RegionsConfig = Field(default_factory=RegionsConfig, description="Region labels (scout-sniper).")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="`geolocate serve` (local page and JSON API).")
    scout: ScoutConfig = Field(default_factory=ScoutConfig, description="The four-view scout-sniper: second scout and sniper.")
    profile: str | None = Field(None, description="The profile these values were resolved with.")
    source: str | None = Field(None, description="The config file they came from.")


# ---------------------------------------------------------------- loading


def default_config_path() -> Path:
    """`./config.toml` when present, else the defaults packaged with geolocate."""
    local = project_config_path()
    return local if local.is_file() else packaged_config_path()


def project_config_path(directory: Path | None = None) -> Path:
    """The project's config file: `config.toml` in `directory` (the project; default: the current directory)."""
    return Path(directory if directory is not None else Path.cwd()) / DEFAULT_CONFIG_NAME


def profile_values(profile: str | None, table: str) -> dict:
    """What a packaged profile sets in one table (e.g. v1's `[cells]`): values the user did not choose."""
    profiles = _read_toml(packaged_config_path()).get("profiles", {}) if profile else {}
    found = profiles.get(profile, {}) if isinstance(profiles, dict) else {}
    return dict(found.get(table, {})) if isinstance(found, dict) and isinstance(found.get(table), dict) else {}


def packaged_config_path() -> Path:
    """The defaults shipped inside the geolocate package."""
    return Path(str(resources.files("geolocate") / "defaults" / DEFAULT_CONFIG_NAME))


def load_config(
    path: Path | None = None, profile: str | None = None, overrides: list[str] | None = None
) -> GeolocateConfig:
    """Read `path`, merge `profile` over the base tables, apply `--set` overrides, validate.

    Raises:
        UserError: unreadable file, unknown profile or key, or a bad value, in one line.
    """
    path = Path(path) if path else default_config_path()
    raw = migrate_config(_read_toml(path), path)
    profiles = raw.pop("profiles", None)
    if profiles is None:  # a project file (`geolocate init`) keeps geolocate's profiles at hand
        profiles = {} if path == packaged_config_path() else _read_toml(packaged_config_path()).get("profiles", {})
    if not isinstance(profiles, dict):
        raise UserError(f"{path}: 'profiles' must be a table of tables ([profiles.<name>]), not {type(profiles).__name__}")
    if profile is not None:
        if profile not in profiles:
            raise UserError(
                f"{path}: unknown profile {profile!r}{_suggest(profile, profiles)}; "
                f"profiles: {', '.join(sorted(profiles)) or 'none'}"
            )
        if not isinstance(profiles[profile], dict):
            raise UserError(f"{path}: profile {profile!r} must be a table ([profiles.{profile}]), not {type(profiles[profile]).__name__}")
        raw = deep_merge(raw, profiles[profile])
    overridden = apply_overrides(raw, overrides or [])
    # The profile asked now, else the one a project file records it was made with.
    raw["profile"], raw["source"] = profile if profile is not None else raw.get("profile"), str(path)
    return validate_config(raw, path, overridden)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> set[str]:
    """Apply `dotted.key=value` items to `raw` in place (split shares rescaled); the keys set."""
    overridden = set()
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(raw, key, value)
        overridden.add(key)
    _rescale_split_shares(raw, overridden)
    return overridden


SPLIT_SHARES = ("train", "val", "test")


def _rescale_split_shares(raw: dict[str, Any], overridden: set[str]) -> None:
    """`--set split.test=0.2` alone: the shares not set keep their proportions and fill the rest to 1.

    A user changing one share means "this much", not "also fix the other two"; with all three or
    none set, nothing is rescaled and `check_ratios` still refuses a sum other than 1.
    """
    split = raw.get("split")
    given = [k for k in SPLIT_SHARES if f"split.{k}" in overridden]
    if not isinstance(split, dict) or not given or len(given) == len(SPLIT_SHARES):
        return
    values = {k: split.get(k) for k in SPLIT_SHARES}
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values.values()):
        return  # validation names the bad value
    rest = [k for k in SPLIT_SHARES if k not in given]
    left, before = 1.0 - sum(values[k] for k in given), sum(values[k] for k in rest)
    if left <= 0:
        shown = " + ".join(f"split.{k}={values[k]:g}" for k in given)
        raise UserError(f"--set {shown} leaves nothing for {' and '.join(f'split.{k}' for k in rest)}; "
                        "the three shares must sum to 1, e.g. --set split.train=0.8 --set split.val=0.1 --set split.test=0.1")
    for k in rest:
        split[k] = round(values[k] * left / before, 6)


def validate_config(raw: dict[str, Any], path: Path | str = "config", overridden: set[str] = frozenset()) -> GeolocateConfig:
    """Validate a raw dict; the first error becomes one line naming the key and what is allowed.

    A bad key or value that came from `--set` (a key in `overridden`) is blamed on `--set`, not the file.
    """
    try:
        return GeolocateConfig.model_validate(migrate_config(raw, path))
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"])
        given = next((k for k in overridden if k == key or k.startswith(key + ".")), None)
        raise UserError(_explain(error, "--set" if given else path, given)) from None


def migrate_config(raw: dict[str, Any], path: Path | str = "config") -> dict[str, Any]:
    """Bring a raw config of an older `version` up to date (renamed keys, in profiles too).

    Raises:
        UserError: a version newer than this geolocate reads, or one too old to migrate.
    """
    version = raw.get("version", CONFIG_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise UserError(f"{path}: version must be an integer, e.g. version = {CONFIG_VERSION}")
    if version > CONFIG_VERSION:
        from geolocate import __version__

        raise UserError(f"{path} is config version {version}, written for a newer geolocate; this geolocate "
                        f"{__version__} reads up to version {CONFIG_VERSION}: upgrade geolocate")
    raw = copy.deepcopy(raw)
    for old in range(version, CONFIG_VERSION):
        if old not in CONFIG_RENAMES:
            raise UserError(f"{path}: config version {old} can no longer be migrated; start again from geolocate's config.toml")
        for table in [raw, *raw.get("profiles", {}).values()]:
            for before, after in CONFIG_RENAMES[old].items():
                _rename_dotted(table, before, after)
    raw["version"] = CONFIG_VERSION
    return raw


def _rename_dotted(raw: dict[str, Any], before: str, after: str) -> None:
    """Move the value at dotted key `before` to `after`, when there is one."""
    *parents, leaf = before.split(".")
    node = raw
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf in node:
        _set_dotted(raw, after, node.pop(leaf))


def _read_toml(path: Path) -> dict[str, Any]:
    refuse_special_file(path, "config")  # a FIFO would block the read forever
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file {path} not found; pass --config PATH or run from a directory with config.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; save the config as UTF-8") from None
    except OSError as exc:
        raise UserError(f"cannot read config {path}: {exc.strerror or exc}; pass --config with a TOML file") from None
    except RecursionError:
        raise UserError(f"{path}: tables nested too deeply (geolocate's config is at most {_MAX_DEPTH} levels)") from None
    if _depth(raw) > _MAX_DEPTH + 2:  # + profiles.<name>
        raise UserError(f"{path}: tables nested too deeply (geolocate's config is at most {_MAX_DEPTH} levels)")
    return raw


def _depth(value: Any) -> int:
    """How deeply tables and arrays nest in `value` (iterative: a hostile file cannot recurse us)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `over` merged in, tables recursively, other values replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(item: str) -> tuple[str, Any]:
    """`a.b=value` → ("a.b", value): a TOML literal when it parses as one, else a plain string."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--set {item[:80]!r}: expected dotted.key=value, e.g. --set train.epochs=3")
    if key.count(".") >= _MAX_DEPTH:
        raise UserError(f"--set {key[:80]!r}: too many dotted parts for a geolocate key (e.g. train.epochs)")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    except RecursionError:
        raise UserError(f"--set {key}: value nested too deeply") from None
    if _depth(value) > _MAX_DEPTH:
        raise UserError(f"--set {key}: value nested too deeply")
    return key, value


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"--set {key}: {part!r} is a value, not a table")
        node = child
    node[leaf] = value


def _explain(error: dict[str, Any], path: Path | str, given: str | None = None) -> str:
    loc = [str(p) for p in error["loc"]]
    key = ".".join(loc)
    if error["type"] == "extra_forbidden":
        renamed = next((new for names in CONFIG_RENAMES.values() for old, new in names.items() if old == key), None)
        if renamed:  # a current-version file (or a --set) still using an old name
            return f"{path}: {key!r} is now {renamed!r} (config version {CONFIG_VERSION}); rename it"
        return f"{path}: unknown key {(given or key)!r}{suggest_key(given or key)}"
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    shown = "(not shown: it holds a credential)" if "token or a password" in error["msg"] else shown
    return f"{path}: bad value for {key!r}: {shown} ({error['msg']})"


def config_keys(tables: bool = False, model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Every dotted key a config file or `--set` may name: `train.epochs`, `eval.gates.absolute`…
    (with `tables`, also the tables: `train`, `eval.gates`)."""
    keys = []
    for name, field in (model or GeolocateConfig).model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += [f"{prefix}{name}"] * tables + config_keys(tables, annotation, f"{prefix}{name}.")
        elif f"{prefix}{name}" != "source":  # set by geolocate when it reads a file
            keys.append(f"{prefix}{name}")
    return keys


def suggest_key(key: str) -> str:
    """` (did you mean 'train.epochs'?)` for `train.epoch`: the nearest valid dotted key, or ''.

    The key's own table is searched first (`train.epoch` → `train.epochs`, never `synth.seed`),
    then every key (`trian.epochs` → `train.epochs`).
    """
    names = config_keys(tables=True)
    parent, _, leaf = key.rpartition(".")
    siblings = [k.rpartition(".")[2] for k in names if k.rpartition(".")[0] == parent]
    match = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.5)
    if match:
        return f" (did you mean {(parent + '.' if parent else '') + match[0]!r}?)"
    match = difflib.get_close_matches(key, config_keys(), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _suggest(word: str, choices) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def public_dict(cfg: GeolocateConfig) -> dict[str, Any]:
    """The resolved config as JSON-ready data, for run snapshots. Holds no secret: the Mapillary
    token is never part of the config (it lives in the environment only)."""
    return cfg.model_dump(mode="json")
