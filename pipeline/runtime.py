"""Where and how a run goes: device and rank (torchrun), per-step seeds, memory, the live log."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch
import torch.distributed as dist

from pipeline.errors import PipelineError


@dataclasses.dataclass
class Runtime:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def runtime(device: str = "auto", key: str = "train.device") -> Runtime:
    """Device and rank (``device`` is the params value at ``key``: cuda without one is refused in one line);
    joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    use_cuda = resolve_device(device, key).type == "cuda"
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Runtime(rank, world, dev)


def resolve_device(name: str, key: str = "augment.device") -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` (the params value at ``key``) -> a device; cuda without one is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"{key}: cuda requested but no CUDA device is available")
    return torch.device(name)


def step_seed(seed: int, step: int, rank: int) -> int:
    """The seed of one step's draws: a resumed run draws what an uninterrupted one would have."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])


def keep_freed_memory() -> None:
    """Ask glibc malloc to keep freed memory instead of returning it to the OS.

    A training step allocates and frees the same large activations every time; by default glibc hands
    blocks above 128 KiB back to the kernel and faults them in again on the next step, which costs
    about as much as the arithmetic on CPU (measured: 1.8x slower steps). No-op off glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return
    if mallopt is None:
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 2**31 - 1)
    mallopt(m_trim_threshold, 2**31 - 1)
    mallopt(m_top_pad, 1 << 30)


def live_log(directory: str, resume: bool):
    """The dvclive logger of a training run (loss curves, sample grids) in ``directory``."""
    from dvclive import Live

    return Live(dir=directory, resume=resume, save_dvc_exp=False, dvcyaml=None)
