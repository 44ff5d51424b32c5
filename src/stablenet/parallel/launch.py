"""Start a local process group without torchrun: ``spawn(fn, nprocs, *args)`` (gloo on 127.0.0.1).

Under torchrun call :func:`init_from_env` instead: it reads the ``RANK``/``WORLD_SIZE``/
``MASTER_ADDR``/``MASTER_PORT`` variables torchrun sets and picks gloo for CPU, NCCL for CUDA.
"""

from __future__ import annotations

import os
import socket

import torch


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_from_env(backend: str | None = None) -> tuple[int, int]:
    """``init_process_group`` from torchrun's environment; returns (rank, world size)."""
    import torch.distributed as dist

    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return dist.get_rank(), dist.get_world_size()


def _entry(rank: int, fn, nprocs: int, port: int, threads: int, args) -> None:
    import torch.distributed as dist

    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=nprocs)
    try:
        fn(rank, nprocs, *args)
    finally:
        dist.destroy_process_group()


def spawn(fn, nprocs: int, *args, threads: int = 1) -> None:
    """Run ``fn(rank, nprocs, *args)`` in ``nprocs`` processes joined by a gloo process group.

    ``fn`` must be importable (a module-level function); each process uses ``threads`` torch
    threads.  Raises if a process fails.
    """
    import torch.multiprocessing as mp

    mp.spawn(_entry, args=(fn, nprocs, free_port(), threads, args), nprocs=nprocs, join=True)
