"""Multi-process training with DistributedDataParallel, from the environment ``torchrun`` sets.

Design (see ``benchmarks/README.md``): the global batch is ``TrainConfig.batch_size``. Every rank
draws the same permutation of each epoch's training rows and takes a contiguous, disjoint share
of every global batch (per-rank batch ``batch_size / world``, the remainder spread over the first
ranks); each share's loss is weighted by ``len(share) * world / len(batch)`` so that DDP's
gradient average is exactly the global batch's gradient. Training with N processes therefore
follows the single-process run with the same ``batch_size`` up to float rounding. Rank 0 alone
writes checkpoints, history and progress; validation is split over the ranks and summed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from mrsynth.errors import MrsynthError

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job; a single-process run is rank 0 of a world of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    enabled: bool = False  # a process group is in use (DDP), even with a world of 1
    owns_group: bool = False  # this context initialised the group and must destroy it

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and shows progress."""
        return self.rank == 0


def launched_by_torchrun(env: Mapping[str, str] = os.environ) -> bool:
    """Whether torchrun's variables are set (any world size)."""
    return all(name in env for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def _torchrun_number(env: Mapping[str, str], name: str, meaning: str, alone: int) -> int:
    """torchrun's variable ``name`` as an int, or ``alone`` when the process was not launched by torchrun."""
    if not launched_by_torchrun(env):
        return alone
    try:
        return int(env[name])
    except ValueError:
        raise MrsynthError(f"{name}={env[name]!r} is not {meaning}") from None


def torchrun_rank(env: Mapping[str, str] = os.environ) -> int:
    """This process's rank among those torchrun started; 0 when it was not launched by torchrun."""
    return _torchrun_number(env, "RANK", "a process number", 0)


def torchrun_processes(env: Mapping[str, str] = os.environ) -> int:
    """How many processes torchrun started for this job; 1 when it was not launched by torchrun."""
    return _torchrun_number(env, "WORLD_SIZE", "a number of processes", 1)


def wants_ddp(requested: bool | None, env: Mapping[str, str] = os.environ) -> bool:
    """``requested`` if given, else True when launched by torchrun with more than one process."""
    if requested is not None:
        return requested
    return torchrun_processes(env) > 1


def refuse_multiple_processes(command: str, env: Mapping[str, str] = os.environ) -> None:
    """Raise ``MrsynthError`` when ``command`` (which runs in one process) was launched by torchrun
    with more than one process: every rank would repeat the whole job and write the same files."""
    if (processes := torchrun_processes(env)) > 1:
        raise MrsynthError(f"{command} runs in one process, but torchrun started {processes}: every one would "
                           f"repeat the whole job and write the same files. Run it without torchrun: only mrsynth train "
                           f"uses several processes (to use several GPUs otherwise, start one run per GPU)")


def rank_device(name: str, local_rank: int) -> torch.device:
    """The device of the process with ``local_rank``: ``auto``/``cuda`` become ``cuda:<local_rank>``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MrsynthError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def setup_distributed(requested: bool | None, device_name: str,
                      env: Mapping[str, str] = os.environ) -> tuple[DistributedContext, torch.device | None]:
    """Join torchrun's process group when DDP is wanted (nccl on CUDA, gloo on CPU).

    Returns the context and the rank's device, or ``(DistributedContext(), None)`` for a plain
    single-process run (the caller then resolves the device itself). A group initialised
    elsewhere is reused and left alone.
    """
    if not wants_ddp(requested, env):
        return DistributedContext(), None
    if not dist.is_available():
        raise MrsynthError("--ddp: this PyTorch build has no torch.distributed")
    if not dist.is_initialized() and not launched_by_torchrun(env):
        raise MrsynthError("--ddp needs the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, "
                           "MASTER_PORT): launch with  torchrun --nproc-per-node N -m mrsynth train ...")
    local_rank = _torchrun_number(env, "LOCAL_RANK", "a local process number", 0)
    device = rank_device(device_name, local_rank)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://",
                                device_id=device if device.type == "cuda" else None)
    context = DistributedContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                                 enabled=True, owns_group=owns)
    return context, device


def teardown_distributed(context: DistributedContext, wait: bool = True) -> None:
    """Destroy the group if this context created it, after waiting for every rank when ``wait``."""
    if context.owns_group and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def wrap_model(model: nn.Module, context: DistributedContext, device: torch.device) -> nn.Module:
    """DDP around ``model`` (or ``model`` itself without a group).

    ``find_unused_parameters=True``: a rank's share may lack a contrast, whose encoder then takes
    no part in that rank's graph. DDP averages a zero gradient for it from that rank, and leaves
    the gradient ``None`` (no Adam step) when no rank used it, as a single process would.
    """
    if not context.enabled:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                               find_unused_parameters=True)


def all_reduce_sums(values: dict[str, float], context: DistributedContext, device: torch.device) -> dict[str, float]:
    """Sum each value over the ranks (float64), keeping the key order; identity without a group."""
    if not context.enabled:
        return dict(values)
    names = list(values)  # the same code runs on every rank, so the order agrees
    tensor = torch.tensor([values[name] for name in names], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return dict(zip(names, tensor.tolist()))


def any_rank(flag: bool, context: DistributedContext, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank (so that all ranks take the same branch)."""
    if not context.enabled:
        return flag
    return all_reduce_sums({"flag": float(flag)}, context, device)["flag"] > 0


def broadcast_object(value: Any, context: DistributedContext, device: torch.device) -> Any:
    """Rank 0's ``value`` on every rank (pickled); identity without a group."""
    if not context.enabled:
        return value
    holder = [value if context.is_main else None]
    dist.broadcast_object_list(holder, src=0, device=device if device.type == "cuda" else None)
    return holder[0]
