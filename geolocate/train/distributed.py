"""DistributedDataParallel under torchrun: gloo on CPU, NCCL on CUDA; only rank 0 writes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """Where this process stands: rank, world size and device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_name: str = "auto") -> Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1), else run alone.

    Args:
        device_name: `train.device`: auto, cpu, cuda, cuda:N or mps (under torchrun, cuda is
            each rank's `cuda:LOCAL_RANK`).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Dist(rank, world, local, device)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`train.device` / `predict.device` as a torch device, refusing one this machine lacks.

    Raises:
        UserError: cuda or mps asked for but not available, naming what is.
    """
    from geolocate.errors import UserError

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


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def broadcast_flag(d: Dist, value: bool) -> bool:
    """Rank 0's decision (e.g. early stop) shared with every rank."""
    if not d.enabled:
        return value
    t = torch.tensor([int(value)], device=d.device if d.device.type == "cuda" else "cpu")
    dist.broadcast(t, src=0)
    return bool(t.item())


def mean_across(d: Dist, value: float) -> float:
    """Average a scalar (e.g. the epoch's training loss) over ranks."""
    if not d.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=d.device if d.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / d.world_size


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
