"""Training logs in TensorBoard (``training.log = ["tensorboard"]``): the per-epoch metrics and the
network's stability figures, written into ``RUN_DIR/tensorboard/`` while the run trains.

Open them with ``tensorboard --logdir RUN_DIR`` (or the parent of several run directories, to
compare runs side by side).  TensorBoard is an optional extra, ``pip install
'stablenet[tensorboard]'``; ``import stablenet`` never loads it, and a run that asks for it
without it is refused before the run directory is touched (:func:`check`).

Scalars, one point per epoch, with the **epoch as the step** (1, 2, …; with ``[multilevel]`` it
continues across the levels, so a multilevel run is one curve, and ``multilevel/level`` shows where
each level starts):

=================================  ======================================================================
tag                                value
=================================  ======================================================================
``loss/train``, ``loss/val``       the history's ``train_loss`` / ``val_loss``
``accuracy/train``, ``accuracy/val``  ``train_accuracy`` / ``val_accuracy``
``accuracy/adversarial``           ``[training.adversarial]``: accuracy on the epoch's adversarial examples
``lr``                             the learning rate after the epoch (``lr`` of the history)
``time/epoch_s``, ``time/total_s``  training seconds of the epoch, and of the run so far
``time/compile_s``                 ``training.compile``: the epoch's seconds spent compiling
``multilevel/level``, ``multilevel/steps``  ``[multilevel]``: the level and the state steps summed over the blocks
``stability/max_re_lambda``        every ``training.log_stability_every`` epochs: max Re λ of the layer
                                   Jacobians ∂f/∂Y over all blocks, layers and sampled points
``stability/fraction_stable``      the share of h·λ inside the block's integrator's stability region
                                   (step-weighted over the blocks, as ``stablenet analyze``)
``stability/max_amplification``    the largest amplification per step at h·λ
``stability/blockK/max_re_lambda``, ``stability/blockK/fraction_stable``  the same per block K
=================================  ======================================================================

The stability figures are those of ``stablenet analyze`` (:func:`stablenet.analysis.jacobian.layer_jacobians`
and :func:`~stablenet.analysis.jacobian.summarize`) on a float64 copy of the network, for a small
fixed sample: the first ``training.log_stability_samples`` validation points (default 32; about
0.05 s for a width-8 block of 32 steps, plus about 1 s the first time); for convolutional networks
the first validation image by default, linearized on the centre 6 × 6 window of every block's
states as ``stablenet analyze`` does, with 100 images propagated (the batch normalization inside
the blocks sees their statistics): about 15 s on one core for the 16-32-64-128 Fashion-MNIST
network (its 64-channel stage has 2304 × 2304 Jacobians), against about 2 minutes per epoch.  The
copy leaves the training untouched: a run with these logs ends with exactly the metrics of one
without.

Resume (``--resume``, also after ``kill -9``): the events of an epoch are written and flushed
*before* its checkpoint, so every checkpointed epoch has its events on disk.  A resumed run first
cuts from the event files every event after the checkpoint's epoch (the epoch the killed process
logged but did not checkpoint, which the resumed run repeats), then appends a new event file
whose steps start after the checkpoint's epoch, opened with ``purge_step`` (so a TensorBoard that
had already read a cut event drops it too).  The files then hold every epoch exactly once.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch

#: the run directory's folder of event files
FOLDER = "tensorboard"
INSTALL = "pip install 'stablenet[tensorboard]'"
#: default points of the stability figures: validation points (dense), images linearized (conv)
DENSE_SAMPLES, CONV_SAMPLES = 32, 1
#: conv: images propagated (their batch statistics), and the window of each state linearized
CONV_BATCH, CONV_CROP = 100, 6

#: history column -> tag
_TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_accuracy": "accuracy/train",
         "val_accuracy": "accuracy/val", "adversarial_accuracy": "accuracy/adversarial", "lr": "lr",
         "level": "multilevel/level", "steps": "multilevel/steps", "compile_s": "time/compile_s"}


def check(config) -> None:
    """ValueError (one line naming the key and the extra) when ``config`` logs to TensorBoard and
    TensorBoard is not installed."""
    if "tensorboard" in config.training.log:
        _summary_writer()


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ValueError(f"training.log: 'tensorboard' needs the tensorboard package (not importable: {exc}); "
                         f"install it with {INSTALL}") from None
    return SummaryWriter


class TrainingLogs:
    """The TensorBoard event files of one run, continued after the checkpoint's ``epoch``.

    :meth:`open` (None when the configuration logs nothing), :meth:`epoch` after every epoch
    (before its checkpoint), :meth:`close` at the end.
    """

    def __init__(self, config, out_dir: Path, epoch: int, validation: torch.Tensor):
        SummaryWriter = _summary_writer()
        self.config, self.validation = config, validation
        self.folder = Path(out_dir) / FOLDER
        self.every = config.training.log_stability_every
        if epoch:  # a resume: drop what the killed process logged after its last checkpoint
            cut_after(self.folder, epoch)
        # flush_secs: the events are flushed every epoch anyway (before the checkpoint)
        self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=epoch + 1 if epoch else None,
                                    flush_secs=3600)

    @classmethod
    def open(cls, config, out_dir: Path, epoch: int, validation: torch.Tensor) -> "TrainingLogs | None":
        """The logs of ``config`` (None without ``training.log``), continuing after ``epoch``;
        ``validation``: the validation inputs (the stability figures take the first few)."""
        if "tensorboard" not in config.training.log:
            return None
        return cls(config, out_dir, epoch, validation)

    def epoch(self, record: dict[str, Any], seconds: float, total_seconds: float, model) -> None:
        """The scalars of a finished epoch (its history ``record``), the stability figures of
        ``model`` when the epoch is a multiple of ``training.log_stability_every``; flushed."""
        step = record["epoch"]
        add = self.writer.add_scalar
        for key, tag in _TAGS.items():
            if key in record:
                add(tag, float(record[key]), step)
        add("time/epoch_s", float(seconds), step)
        add("time/total_s", float(total_seconds), step)
        if self.every and step % self.every == 0:
            figures = stability_figures(model, self.config.training.log_stability_samples, self.validation)
            for name, value in figures["network"].items():
                add(f"stability/{name}", value, step)
            for k, block in enumerate(figures["blocks"]):
                add(f"stability/block{k}/max_re_lambda", block["max_re_lambda"], step)
                add(f"stability/block{k}/fraction_stable", block["fraction_stable"], step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


# -- the stability figures --------------------------------------------------------------------------
def stability_figures(model, samples: int | None, x: torch.Tensor) -> dict[str, Any]:
    """max Re λ, the share of h·λ inside the stability region and the largest amplification of every
    block of ``model`` and of the whole network (as ``stablenet analyze``), at the first ``samples``
    points of ``x`` (default :data:`DENSE_SAMPLES`; conv :data:`CONV_SAMPLES` images on the centre
    :data:`CONV_CROP`² window, :data:`CONV_BATCH` images propagated), on a float64 copy of ``model``."""
    from ..analysis.jacobian import layer_jacobians, summarize
    from ..conv_models import ConvODENet

    net = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
    net.eval()
    x = x.detach().to(device="cpu", dtype=torch.float64)
    summaries = []
    with torch.no_grad():
        if isinstance(net, ConvODENet):
            samples = CONV_SAMPLES if samples is None else samples
            y = x[:max(samples, CONV_BATCH)]
            y = net.opening(net.prepare(y) if hasattr(net, "prepare") else y)
            for i, stage in enumerate(net.stages):
                if i:
                    y = net.connectors[i - 1](y)
                for block in stage:
                    with torch.enable_grad():
                        summaries.append(summarize(layer_jacobians(block, y, crop=CONV_CROP, samples=samples)))
                    y = block(y)
        else:
            y = net.opening(x[:DENSE_SAMPLES if samples is None else samples])
            for k, block in enumerate(net.blocks):
                if k:
                    y = net.connectors[k - 1](y)
                with torch.enable_grad():
                    summaries.append(summarize(layer_jacobians(block, y)))
                y = block(y)
    blocks = [{"max_re_lambda": s["max_real"], "fraction_stable": s["fraction_stable"],
               "max_amplification": s["max_amplification"], "steps": s["steps"]} for s in summaries]
    network = {"max_re_lambda": max(b["max_re_lambda"] for b in blocks),
               "fraction_stable": sum(b["fraction_stable"] * b["steps"] for b in blocks) / sum(b["steps"] for b in blocks),
               "max_amplification": max(b["max_amplification"] for b in blocks)}
    return {"network": network, "blocks": blocks}


# -- resume -----------------------------------------------------------------------------------------
def cut_after(folder: Path, epoch: int) -> list[Path]:
    """Remove every event with a step after ``epoch`` from the event files in ``folder`` (a killed
    run's events past its last checkpoint; a record cut short by the kill goes too).  Each file that
    holds such events is rewritten to a temporary file and moved over itself.  Returns the files
    rewritten."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    rewritten = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        records = list(RawEventFileLoader(str(path)).Load())
        keep = [r for r in records if event_pb2.Event.FromString(r).step <= epoch]
        if len(keep) == len(records) and _whole(path, records):
            continue
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as handle:
            writer = RecordWriter(handle)
            for record in keep:
                writer.write(record)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        rewritten.append(path)
    return rewritten


def _whole(path: Path, records: list[bytes]) -> bool:
    """Whether the file is exactly its ``records`` (no partial record left at its end by a kill)."""
    return path.stat().st_size == sum(len(r) + 16 for r in records)
