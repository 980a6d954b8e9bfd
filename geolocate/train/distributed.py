"""DistributedDataParallel under torchrun: gloo on CPU, NCCL on CUDA; only rank 0 writes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from geolocate.device import resolve_device


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
