"""Data parallelism through torch.distributed: ``torchrun --nproc_per_node N deepcharge train|predict ...``.

torchrun describes the process group in the environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT);
each rank joins it with NCCL on GPUs and gloo on CPUs, so the same code path runs (and is tested) on a CPU.
"""

import logging
import os
from typing import Tuple

import torch
import torch.distributed as dist

from deepcharge.utils import resolve_device


def setup(device_name: str) -> torch.device:
    """Join the process group torchrun describes, if any; the device this rank computes on."""
    device = resolve_device(device_name)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if dist.get_rank() != 0:  # one log, from rank 0
            logging.getLogger("deepcharge").setLevel(logging.WARNING)
    return device


def rank_and_size() -> Tuple[int, int]:
    """This process's rank and the number of processes (0, 1 without torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes files and logs (rank 0)."""
    return rank_and_size()[0] == 0


def agree(flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (every rank must call this at the same point)."""
    if rank_and_size()[1] == 1:
        return flag
    value = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def broadcast_float(value: float, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank (every rank must call this at the same point)."""
    if rank_and_size()[1] == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def gather_to_main(value) -> list:
    """Every rank's ``value`` (any picklable object), in rank order, on rank 0; an empty list elsewhere."""
    rank, size = rank_and_size()
    gathered = [None] * size if rank == 0 else None
    dist.gather_object(value, gathered, dst=0)
    return gathered or []
