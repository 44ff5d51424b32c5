"""Point-to-point messages between the ranks that own neighbouring stretches of time.

MGRIT only ever sends a state (a tensor or a (y, z) pair) from the rank that owns a time point to
the rank that owns the next one, plus one all-reduce of the residual norm per iteration and a
broadcast of the result.  :class:`SerialComm` is the one-rank case (nothing is ever sent);
:class:`TorchComm` uses a ``torch.distributed`` process group, the same code for gloo (CPU
tensors) and NCCL (CUDA tensors).  Both count what they send, for the cost model.
"""

from __future__ import annotations

import torch

from ..state import flat, is_pair, unflat


class SerialComm:
    """One rank: every time point is local, so MGRIT never sends anything."""

    rank = 0
    size = 1

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.allreduces = 0

    def isend(self, state, dst: int, tag: int):  # pragma: no cover - never called with one rank
        """Never called with one rank: raises ``RuntimeError``."""
        raise RuntimeError("SerialComm has a single rank and cannot send")

    def recv(self, template, src: int, tag: int):  # pragma: no cover
        """Never called with one rank: raises ``RuntimeError``."""
        raise RuntimeError("SerialComm has a single rank and cannot receive")

    def wait(self, handles) -> None:
        """Nothing to wait for."""
        pass

    def allreduce_sum(self, value: float, device=None) -> float:
        """``value`` itself, the sum over the one rank (the all-reduce is counted)."""
        self.allreduces += 1
        return value

    def allreduce_tensors(self, tensors) -> None:
        """Nothing to do: with one rank the tensors already hold the sum."""
        pass

    def broadcast(self, state, src: int, template):
        """``state`` itself."""
        return state


class TorchComm:
    """Messages through a ``torch.distributed`` process group (gloo on CPU, NCCL on GPU).

    Tags are the operation counter that every rank advances identically (NCCL ignores tags but
    keeps point-to-point messages between a pair of ranks in order, which is all MGRIT needs).

    Args:
        group: the process group (default: the world group).  ``torch.distributed`` must be
            initialized (``init_process_group``, e.g. by torchrun's environment).
    """

    def __init__(self, group=None) -> None:
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise ValueError("distributed=True needs torch.distributed initialized "
                             "(torch.distributed.init_process_group), got it uninitialized")
        self.dist = dist
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        self.messages = 0
        self.bytes = 0
        self.allreduces = 0

    def _global(self, rank: int) -> int:
        if self.group is None:
            return rank
        return self.dist.get_global_rank(self.group, rank)

    def isend(self, state, dst: int, tag: int):
        """Start sending ``state`` (each tensor of a pair) to rank ``dst`` of the group with ``tag``,
        counting messages and bytes; returns the handles for :meth:`wait`."""
        handles = []
        for t in flat(state):
            t = t.detach().contiguous()
            self.messages += 1
            self.bytes += t.numel() * t.element_size()
            handles.append((self.dist.isend(t, self._global(dst), group=self.group, tag=tag), t))
        return handles

    def recv(self, template, src: int, tag: int):
        """Receive from rank ``src`` of the group a state shaped like ``template`` (a tensor or a
        pair); blocks until it has arrived."""
        out = []
        for t in flat(template):
            buf = torch.empty_like(t)
            self.dist.recv(buf, self._global(src), group=self.group, tag=tag)
            out.append(buf)
        return unflat(out, is_pair(template))

    def wait(self, handles) -> None:
        """Wait until the sends behind ``handles`` (from :meth:`isend`) have completed."""
        for work, _tensor in handles:
            work.wait()

    def allreduce_sum(self, value: float, device=None) -> float:
        """The sum of ``value`` over the group's ranks (reduced as a float64 tensor on ``device``)."""
        self.allreduces += 1
        t = torch.tensor([value], dtype=torch.float64, device=device)
        self.dist.all_reduce(t, group=self.group)
        return float(t.item())

    def allreduce_tensors(self, tensors) -> None:
        """Sum each of ``tensors`` over the group's ranks, in place."""
        for t in tensors:
            self.dist.all_reduce(t, group=self.group)

    def broadcast(self, state, src: int, template):
        """Rank ``src``'s ``state`` on every rank of the group (the others pass a ``template`` with
        its shapes)."""
        out = []
        for i, t in enumerate(flat(template)):
            buf = flat(state)[i].detach().contiguous().clone() if self.rank == src else torch.empty_like(t)
            self.dist.broadcast(buf, self._global(src), group=self.group)
            out.append(buf)
        return unflat(out, is_pair(template))
