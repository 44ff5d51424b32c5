"""A small deterministic training loop shared by the seed experiments that train networks.

Plain PyTorch: Adam over mini-batches whose order comes from a dedicated seeded
``torch.Generator`` (so a run depends only on the seed, the data and the initial weights, not on
the global random state), cross-entropy loss, optional per-epoch evaluation.  A non-finite
training loss stops the run (the history says so) instead of raising: the seed 002 "unstable"
configuration is expected to be able to blow up and that is a result, not an error.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

from ...models import softmax_cross_entropy
from ..training import evaluate


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the body on one torch thread (the experiments' documented timings, and numbers that do
    not depend on the thread count), then restore the caller's thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def accuracy(model, x: torch.Tensor, y: torch.Tensor, **forward_kwargs) -> float:
    """Share of correctly classified points (``forward_kwargs`` go to the model's forward)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        pred = model(x, **forward_kwargs).argmax(-1)
    model.train(was_training)
    return float((pred == y).double().mean())


def train_model(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int,
                batch_size: int, lr: float, seed: int = 0, weight_decay: float = 0.0,
                val: tuple[torch.Tensor, torch.Tensor] | None = None, record: bool = True,
                loss_fn: Callable = softmax_cross_entropy, optimizer: torch.optim.Optimizer | None = None,
                schedule: str | None = None, epoch_offset: int = 0) -> list[dict]:
    """Train ``model`` in place with Adam on shuffled mini-batches; return the per-epoch history.

    Each history entry has ``epoch`` (counting from ``epoch_offset + 1``), ``batch_loss`` (mean of
    the mini-batch losses seen during the epoch), ``seconds`` and, with ``record``, the loss and
    accuracy of the model after the epoch on the training set (``train_loss``,
    ``train_accuracy``) and on ``val`` (``val_loss``, ``val_accuracy``).  If a mini-batch loss is
    not finite the run stops; the last entry then has ``diverged: True``.  ``schedule="cosine"``
    decays the learning rate from ``lr`` to 0 over the ``epochs`` (cosine, stepped per epoch).
    """
    if schedule not in (None, "cosine"):
        raise ValueError(f"schedule must be None or 'cosine', got {schedule!r}")
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs) if schedule else None
    generator = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total, diverged = 0.0, False
        for idx in torch.randperm(len(y), generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            if not torch.isfinite(loss):
                diverged = True
                break
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        if scheduler is not None:
            scheduler.step()
        entry: dict = {"epoch": epoch_offset + epoch + 1,
                       "batch_loss": total / len(y) if not diverged else math.nan}
        if record and not diverged:
            entry["train_loss"], entry["train_accuracy"] = evaluate(model, x, y, loss_fn)
            if val is not None:
                entry["val_loss"], entry["val_accuracy"] = evaluate(model, val[0], val[1], loss_fn)
        entry["seconds"] = time.perf_counter() - start
        if diverged:
            entry["diverged"] = True
        history.append(entry)
        if diverged:
            break
    model.eval()
    return history
