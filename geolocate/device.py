"""Which torch device a `train.device` / `predict.device` name means on this machine.

Below `train/` and `inference/` both: predicting picks a device too, and must not import the
trainer to do it. torch is imported inside the function, so importing this module is free.
"""

from __future__ import annotations

from geolocate.errors import UserError


def resolve_device(name: str, local_rank: int = 0):
    """`name` (auto, cpu, cuda, cuda:N, mps) as a `torch.device`, refusing one this machine lacks.

    Under torchrun, `auto` and `cuda` mean this rank's `cuda:local_rank`.

    Raises:
        UserError: cuda or mps asked for but not available, naming what is.
    """
    import torch

    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if name.startswith("cuda") and not cuda:
        raise UserError(f"device {name!r}: no CUDA GPU is visible to torch {torch.__version__}; use --device cpu"
                        + (" or mps" if mps else ""))
    if name == "mps" and not mps:
        raise UserError("device 'mps': Apple's Metal backend is not available here; use --device cpu")
    if name == "cuda":
        return torch.device(f"cuda:{local_rank}")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise UserError(f"device {name!r}: only {torch.cuda.device_count()} CUDA devices (cuda:0 … cuda:{torch.cuda.device_count() - 1})")
    return torch.device(name)
