"""Where a training process stands in layer-parallel × data-parallel training (``[parallel]``).

P = L × D processes (torchrun sets ``RANK``/``WORLD_SIZE``): rank r = d·L + ℓ is layer rank ℓ of
data group d.  The L ranks of a data group split every ODE block's time steps and solve its
forward and backward propagation together by MGRIT (:class:`~stablenet.parallel.MGRIT` over the
group's communicator); they see the same batch shard and end with the same gradients.  The D
data groups each take a contiguous 1/D of every batch; the gradients are combined by an
all-reduce over the D ranks that hold the same layer rank (weighted by shard size, so the result
is the full batch's gradient — what ``DistributedDataParallel`` computes, without its bucketing).
Only rank 0 writes files.  One process (no torchrun) is the case L = D = 1: MGRIT runs serially.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .gradient import MGRIT


def make_parallel_model(model, *, distributed: bool = False, group=None, **options):
    """Give every :class:`~stablenet.block.ODEBlock` in ``model`` the MGRIT gradient mode.

    One mode instance per block (each keeps its own residual history).  ``options`` are those
    of :class:`~stablenet.parallel.MGRITOptions`; ``distributed=True`` splits every block's time
    steps over the ranks of ``group`` (the world group by default).  Returns ``model`` for
    chaining.  :meth:`ParallelContext.apply` is the trainer's use of it.
    """
    from ..block import ODEBlock

    blocks = [m for m in model.modules() if isinstance(m, ODEBlock)]
    if not blocks:
        raise ValueError(f"model must contain at least one ODEBlock, got {type(model).__name__} without one")
    for block in blocks:
        block.gradient = MGRIT(distributed=distributed, group=group, **options)
    return model


class ParallelContext:
    """This process's place in the P = ``layer_ranks`` × D process grid (see the module docstring).

    Build it with :meth:`from_config` before the model; :meth:`apply` gives a model's blocks the
    MGRIT gradient mode on the layer group; :meth:`shard` picks this data group's part of a
    batch; :meth:`reduce_gradients` / :meth:`reduce_sum` combine over the data groups.
    """

    def __init__(self, layer_ranks: int, mgrit_options: dict[str, Any]):
        self.layer_ranks, self.options = layer_ranks, dict(mgrit_options)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1 and layer_ranks > 1:
            raise ValueError(f"parallel.layer_ranks: {layer_ranks} needs {layer_ranks} processes (or a multiple); "
                             f"launch with torchrun --nproc_per_node={layer_ranks} -m stablenet train CONFIG")
        if world % layer_ranks:
            raise ValueError(f"parallel.layer_ranks: {layer_ranks} does not divide the {world} processes "
                             f"started (torchrun --nproc_per_node); expected a divisor of {world}")
        self.world, self.data_ranks = world, world // layer_ranks
        self.layer_group = self.data_group = None
        self._owns_group = False
        if world == 1:
            self.rank = 0
        else:
            import torch.distributed as dist

            from .launch import init_from_env

            self._owns_group = not dist.is_initialized()
            self.rank, _ = init_from_env()
            layer_groups = [dist.new_group(list(range(d * layer_ranks, (d + 1) * layer_ranks)))
                            for d in range(self.data_ranks)]
            data_groups = [dist.new_group(list(range(l, world, layer_ranks))) for l in range(layer_ranks)]
            self.layer_group = layer_groups[self.rank // layer_ranks]
            self.data_group = data_groups[self.rank % layer_ranks]
        self.data_index = self.rank // layer_ranks

    @classmethod
    def from_config(cls, parallel) -> "ParallelContext":
        """From a :class:`~stablenet.app.config.ParallelConfig` (``None``: one process, no MGRIT)."""
        if parallel is not None:
            return cls(parallel.layer_ranks, parallel.mgrit_options())
        world = os.environ.get("WORLD_SIZE", "1")
        if world != "1":
            raise ValueError(f"{world} processes were started (torchrun) but the configuration has no "
                             f"[parallel] section; expected [parallel] (layer_ranks = …) or one process")
        return cls(1, {})

    @property
    def writer(self) -> bool:
        """Whether this process writes the run directory (rank 0)."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether the blocks are solved by MGRIT (options were given, from ``[parallel]``)."""
        return bool(self.options)

    def apply(self, model: torch.nn.Module) -> torch.nn.Module:
        """Solve every ODE block of ``model`` by MGRIT on this process's layer group
        (:func:`make_parallel_model`); without ``[parallel]`` leave it as it is."""
        if not self.enabled:
            return model
        return make_parallel_model(model, distributed=self.layer_ranks > 1, group=self.layer_group, **self.options)

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This data group's contiguous part of the batch indices ``idx``."""
        if self.data_ranks == 1:
            return idx
        return torch.tensor_split(idx, self.data_ranks)[self.data_index]

    def reduce_gradients(self, params, weight: float) -> None:
        """grad ← Σ over data groups of weight·grad (weight: this shard's share of the batch)."""
        if self.data_ranks == 1:
            return
        import torch.distributed as dist

        for p in params:
            if p.grad is not None:
                p.grad.mul_(weight)
                dist.all_reduce(p.grad, group=self.data_group)

    def reduce_sum(self, values: list[float]) -> list[float]:
        """Σ of ``values`` over the data groups (each layer rank of a group holds the same ones)."""
        if self.data_ranks == 1:
            return list(values)
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, group=self.data_group)
        return t.tolist()

    def barrier(self) -> None:
        """Wait for every process (nothing to do with one process)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Leave the process group if this context created it."""
        if self._owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self._owns_group = False

