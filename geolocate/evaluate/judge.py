"""Which configuration judges a run: its own saved one, unless the user asks for another.

A run trained on the tiny profile must not be re-judged by the base (v1) gates just because
`geolocate evaluate` was typed without `--profile`: by default the run's `config.json` decides
(model, evaluation settings, gates). `--config`, `--profile` or `--set` ask for another judge;
the report then says so at the top, and `freeze` refuses a run whose last verdict was not its own.
"""

from __future__ import annotations

from typing import Any

from geolocate.config import GeolocateConfig
from geolocate.evaluate.tables import format_value


def judging_config(cli_cfg: GeolocateConfig, run, asked: bool) -> GeolocateConfig:
    """The config that evaluates `run`: its saved one, unless `asked` (or it has none).

    Args:
        cli_cfg: the config resolved from the command line (its `paths` always apply: they say
            where the data is now, not how to judge).
        run: the `RunDir` being evaluated.
        asked: whether `--config`, `--profile` or `--set` was given.
    """
    own = _saved_config(run)
    if own is None or asked:
        return cli_cfg
    return own.model_copy(update={"paths": cli_cfg.paths})


def judged_record(cfg: GeolocateConfig, run) -> dict[str, Any]:
    """Whose config judged `run`, for metrics.json and REPORT.md: its own when the profile and
    every evaluation setting (gates included) match the run's saved config."""
    own = _saved_config(run)
    is_own = own is None or (cfg.profile == own.profile and cfg.eval == own.eval)
    return {"own": is_own, "profile": cfg.profile, "run_profile": own.profile if own is not None else None,
            "gates": cfg.eval.gates.model_dump()}


def _saved_config(run) -> GeolocateConfig | None:
    return run.read_config()


def judged_line(record: dict[str, Any], absolute: bool | None = None) -> str:
    """REPORT.md's first line under the title: whose config judged the run, with the gate thresholds.

    Args:
        absolute: whether the fixed thresholds applied (default: what the config says); without them
            the area's baselines set the bar, which the Gates line below spells out.
    """
    g = record["gates"]
    if g.get("absolute", True) if absolute is None else absolute:
        thresholds = (f"accuracy ≥ {format_value('acc', g['accuracy_min'])}, median < {g['median_km_max']:g} km, "
                      f"p90 < {g['p90_km_max']:g} km, stability std ≤ {g['max_std_km']:g} km")
    else:
        thresholds = "gates relative to this area's baselines (below)"
    if record["own"]:
        return f"Judged with the run's own config (profile {record['profile'] or 'none'}): {thresholds}."
    return (f"**Judged with profile {record['profile'] or 'none'}, not the run's own "
            f"({record['run_profile'] or 'unknown'})**, as asked on the command line: {thresholds}.")
