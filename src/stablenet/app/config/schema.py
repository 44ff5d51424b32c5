"""The tables of a configuration and the rules between them: ``[data]`` (``[data.augment]``),
``[model]`` (:mod:`.model`), ``[training]`` (``[training.adversarial]``), ``[multilevel]``, ``[parallel]``, and :class:`Config`.

The rules kept here are training policy (which optimizer, precision or parallelism goes with
which model); what makes a valid network is the library's (:mod:`stablenet.specs`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from ..._checks import ArgumentError
from .base import MAX_COUNT, MAX_PIXELS, MAX_SEED, MAX_THREADS, Strict, count_or_counts
from .model import ModelConfig, default_kind

class AugmentConfig(Strict):
    """``[data.augment]``: image augmentation of every training batch (convolutional models).

    Random crop (zero padding, then a window of the original size), random left–right flip, then
    per-channel standardization, drawn from the trainer's seeded generator (so ``--resume`` stays
    exact); validation and test images get the standardization only.
    """

    padding: int = Field(0, ge=0, le=MAX_PIXELS, description="random crop: zero padding on every side "
                         "(0: no crop; 4 for CIFAR-10, 2 for 28×28 images)")
    flip: bool = Field(False, description="mirror each training image left–right with probability ½")
    erase: float = Field(0.0, ge=0, le=1, description="random erasing (Zhong et al. 2020): probability that a "
                         "rectangle of 2–40% of a training image's area (aspect ratio 0.3–3.3) is filled with "
                         "uniform noise in [0, 1)")
    normalize: bool = Field(False, description="standardize every channel with the mean and standard deviation "
                            "of the training split")
    mean: Optional[list[float]] = Field(None, description="fixed per-channel means instead (with std)")
    std: Optional[list[float]] = Field(None, description="fixed per-channel standard deviations (> 0; with mean)")

    @model_validator(mode="after")
    def _statistics(self):
        if (self.mean is None) != (self.std is None):
            raise ValueError(f"data.augment.{'std' if self.std is None else 'mean'}: missing; expected mean and "
                             f"std together (one value per channel)")
        if self.mean is not None:
            if self.normalize:
                raise ValueError("data.augment.normalize: true together with fixed mean/std; expected one of "
                                 "them (normalize = true uses the training split's statistics)")
            if len(self.mean) != len(self.std) or not self.mean:
                raise ValueError(f"data.augment.std: {len(self.std)} values for {len(self.mean)} means; expected "
                                 f"one of each per channel")
            if min(self.std) <= 0:
                raise ValueError(f"data.augment.std: {self.std}; expected every value > 0")
        return self


class DataConfig(Strict):
    name: Literal["peaks", "ellipses", "swiss_roll", "moons", "circles", "digits", "fashion_mnist", "cifar10"] = Field(
        "peaks", description="data set")
    data_dir: Optional[str] = Field(
        None, description="directory with the data files: Fashion-MNIST IDX files (default "
        "/usr/share/datasets/fashion-mnist), CIFAR-10 binary batches (required; the folder with "
        "data_batch_1.bin … test_batch.bin or its parent)")
    options: dict[str, float | int] = Field(
        default_factory=dict,
        description="data-set options, e.g. { n_train_per_class = 1000 } for peaks, { n_train = 10000 } for fashion_mnist")
    augment: Optional[AugmentConfig] = Field(
        None, description="image augmentation for convolutional models; see [data.augment]")

    @field_validator("options")
    @classmethod
    def _counts_fit(cls, options):
        """The integer options are counts (n_train, …): at most MAX_COUNT (the loaders check the rest)."""
        for key, value in options.items():
            if isinstance(value, int) and not isinstance(value, bool) and value > MAX_COUNT:
                raise ValueError(f"data.options.{key}: {value}; expected an integer of at most {MAX_COUNT}")
        return options


#: data sets whose samples are images (what kind = "conv" needs)
IMAGE_DATASETS = ("digits", "fashion_mnist", "cifar10")


#: optimizers of :mod:`stablenet.optim` (second derivatives through the network; autograd blocks only)
NEWTON_OPTIMIZERS = ("gauss_newton", "newton")


#: the attacks adversarial training can use (stablenet.robustness names); AutoAttack and the noises cannot
TRAINING_ATTACKS = ("fgsm-linf", "fgsm-l2", "pgd-linf", "pgd-l2")
#: PGD iterations and random starts of adversarial training when not set (Madry et al. 2018 train
#: with 7–10 steps from one random start)
DEFAULT_PGD_STEPS, DEFAULT_PGD_RESTARTS = 10, 1


class AdversarialConfig(Strict):
    """``[training.adversarial]``: adversarial training (Goodfellow et al. 2015; Madry et al. 2018).

    In every training batch a share ``fraction`` of the points (the first ones of the batch, whose
    order is random) is replaced by adversarial examples of the attack against the current
    network, inside the data's domain and the ``eps``-ball around the clean points
    (:func:`stablenet.robustness.perturb`); the optimizer then steps on the mixed batch.  The
    attack's random starts are seeded from (seed, epoch, batch), so ``--resume`` stays exact.
    """

    attack: Literal["fgsm-linf", "fgsm-l2", "pgd-linf", "pgd-l2"] = Field(..., description="the attack that makes the adversarial examples: fgsm-linf, fgsm-l2 "
                        "(one step of length eps), pgd-linf, pgd-l2 (projected gradient descent)")
    eps: float = Field(..., ge=0, description="radius of the perturbation ball in the attack's norm, in input "
                       "units (peaks: points in [-3, 3]²; images: pixels in [0, 1]); 0 trains on clean copies")
    fraction: float = Field(0.5, description="share of every batch replaced by adversarial examples, in (0, 1] "
                            "(0.5: Goodfellow et al.'s equal mix of clean and adversarial loss; 1: Madry et al.)")
    steps: Optional[int] = Field(None, ge=1, le=MAX_COUNT, description=f"pgd: gradient steps (default "
                                 f"{DEFAULT_PGD_STEPS}); fgsm takes one")
    step_size: Optional[float] = Field(None, gt=0, description="pgd: step length as a multiple of eps "
                                       "(default 2.5 / steps, as stablenet.robustness)")
    restarts: Optional[int] = Field(None, ge=0, le=MAX_COUNT, description=f"pgd: random starts in the eps-ball "
                                    f"(0: start at the clean point; default {DEFAULT_PGD_RESTARTS}); with more "
                                    f"than one, a start that fools the network is kept")

    @field_validator("attack", mode="before")
    @classmethod
    def _training_attack(cls, value):
        if value in TRAINING_ATTACKS:
            return value
        if isinstance(value, str) and value.startswith("autoattack"):
            raise ValueError(f"an evaluation ensemble (hundreds of steps and a query attack per point), not a "
                             f"training attack; expected {', '.join(TRAINING_ATTACKS)}")
        if value in ("gaussian", "uniform"):
            raise ValueError(f"random noise, not an adversarial attack; expected {', '.join(TRAINING_ATTACKS)}")
        raise ValueError(f"expected one of {', '.join(TRAINING_ATTACKS)}")

    @field_validator("eps", "fraction", "step_size", mode="before")
    @classmethod
    def _number(cls, value):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError("expected a number")
        return value

    @field_validator("fraction", mode="after")
    @classmethod
    def _fraction(cls, value):
        if not 0 < value <= 1:
            raise ValueError("expected a fraction in (0, 1] of every batch")
        return value

    @model_validator(mode="after")
    def _pgd_keys(self):
        if self.attack.startswith("fgsm"):
            for key in ("steps", "step_size", "restarts"):
                value = getattr(self, key)
                if value is not None and not (key == "steps" and value == 1):
                    raise ValueError(f"training.adversarial.{key}: {value!r} applies to pgd attacks only; expected "
                                     f"it unset with attack {self.attack!r} (one step of length eps from the "
                                     f"clean point)")
        return self

    def attack_spec(self):
        """The :class:`stablenet.robustness.Attack` of this table (defaults resolved)."""
        from ...robustness import Attack

        method, norm = self.attack.split("-")
        if method == "fgsm":
            return Attack("fgsm", norm)
        return Attack("pgd", norm, steps=self.steps or DEFAULT_PGD_STEPS, step_size=self.step_size,
                      restarts=DEFAULT_PGD_RESTARTS if self.restarts is None else self.restarts)


class TrainingConfig(Strict):
    epochs: int = Field(20, ge=1, le=MAX_COUNT, description="number of passes over the training data "
                        "(with [multilevel]: ignored, see multilevel.epochs_per_level)")
    batch_size: int = Field(64, ge=1, le=MAX_COUNT, description="mini-batch size")
    optimizer: Literal["sgd", "adam", "lbfgs", "gauss_newton", "newton"] = Field(
        "adam", description="torch.optim SGD, Adam or L-BFGS, or a Newton-type optimizer of stablenet.optim "
        "(docs/optimizers.md): Gauss–Newton–CG or Newton–CG, one inexact Newton step with Armijo line search "
        "per batch")
    lr: float = Field(0.01, gt=0, description="learning rate; gauss_newton / newton: the first trial step of "
                      "the line search (1 = full Newton step; their default is 1.0)")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    nesterov: bool = Field(False, description="Nesterov momentum (SGD)")
    schedule: Literal["constant", "step", "multistep", "cosine", "onecycle"] = Field(
        "constant", description="learning-rate schedule: per epoch constant, step (× lr_decay every lr_step_epochs), "
        "multistep (× lr_decay at each of lr_milestones), cosine (annealed to 0); onecycle: per batch, warm-up to "
        "lr then annealing (torch OneCycleLR, over each level's epochs)")
    lr_step_epochs: int = Field(10, ge=1, le=MAX_COUNT, description="step schedule: epochs between decays")
    lr_decay: float = Field(0.5, gt=0, le=1, description="step / multistep schedule: factor per decay")
    lr_milestones: list[int] = Field(default_factory=list, description="multistep schedule: the epochs after "
                                     "which lr is multiplied by lr_decay, increasing, e.g. [60, 80]")
    onecycle_pct_start: float = Field(0.3, gt=0, lt=1, description="onecycle schedule: fraction of the batches "
                                      "spent warming up")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty on the network weights θ (opening and blocks)")
    classifier_weight_decay: float = Field(0.0, ge=0, description="L2 penalty on the classifier (W, μ)")
    smoothness: float = Field(0.0, ge=0, description="α of the time-smoothness regularizer α·Σ‖θ_{k+1} − θ_k‖²/h")
    loss: Literal["cross_entropy", "least_squares"] = Field("cross_entropy", description="loss function")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="cross_entropy with sgd / adam / lbfgs: train "
                                   "against (1 − ε)·onehot + ε/classes (Szegedy et al. 2016); validation and test "
                                   "losses stay the plain cross-entropy")
    lbfgs_history: int = Field(20, ge=1, le=MAX_COUNT, description="L-BFGS history size")
    varpro: bool = Field(False, description="variable projection (gauss_newton / newton): eliminate the "
                         "classifier (W, μ) by an inner Newton solve per objective evaluation and optimize the "
                         "reduced objective in θ; its regularization is classifier_weight_decay (> 0 for "
                         "cross_entropy)")
    block_coordinate: bool = Field(False, description="with varpro: alternate the exact classifier solve and a "
                                   "Newton-type θ step with the classifier fixed (BlockCoordinateDescent) "
                                   "instead of the reduced objective")
    cg_rtol: float = Field(0.1, gt=0, lt=1, description="gauss_newton / newton: CG stops at "
                           "‖Ap + g‖ ≤ cg_rtol·‖g‖")
    cg_max_iter: int = Field(20, ge=1, le=MAX_COUNT, description="gauss_newton / newton: at most this many CG "
                             "iterations (curvature products) per step")
    hessian_samples: Optional[int | float] = Field(
        None, description="gauss_newton / newton: curvature on a random subsample of each batch, a number "
        "of points ≥ 1 or a fraction in (0, 1] (default: the whole batch); gradient and line search use the "
        "whole batch")
    damping: float = Field(0.0, ge=0, description="gauss_newton / newton: δ added to the curvature (δI, "
                           "Levenberg–Marquardt)")
    dtype: Literal["float32", "float64"] = Field("float32", description="floating-point precision")
    device: str = Field("cpu", description="torch device, e.g. cpu or cuda")
    mixed_precision: Literal["none", "bfloat16", "float16"] = Field(
        "none", description="sgd / adam with dtype float32 and gradient 'autograd': run the training forward "
        "pass and loss under torch.autocast in this precision (weights, optimizer state and evaluation stay "
        "float32); float16 with a dynamic loss scale (torch.amp.GradScaler, kept in checkpoints).  For GPUs: "
        "on a CPU without bfloat16 units both are slower than float32")
    threads: int = Field(0, ge=0, le=MAX_THREADS,
                         description="torch CPU threads (0: torch's default; 1 is fastest for small networks)")
    compile: bool = Field(False, description="sgd / adam / lbfgs: run the training forward and backward "
                          "passes through torch.compile (docs/compile.md); validation, test and checkpoints use "
                          "the uncompiled network.  The history gets a compile_s column: the seconds the epoch "
                          "spent compiling (the first epoch's, and a level's after a refinement), not counted "
                          "in step time.  Pays off for small widths and batches; gradients 'adjoint' and "
                          "'mgrit' run uncompiled inside the compiled network")
    adversarial: Optional[AdversarialConfig] = Field(
        None, description="adversarial training; see [training.adversarial]")
    log: list[Literal["tensorboard"]] = Field(
        default_factory=list, description="where the per-epoch metrics are logged while training, besides "
        "history.json: [\"tensorboard\"] writes TensorBoard event files into RUN_DIR/tensorboard (losses, "
        "accuracies, lr, wall time, stability figures; docs/tracking.md; needs pip install "
        "'stablenet[tensorboard]')")
    log_stability_every: int = Field(0, ge=0, le=MAX_COUNT, description="with log: every this many epochs, "
                                     "log the network's max Re λ and the share of h·λ inside the integrator's "
                                     "stability region, as stablenet analyze computes them (0: never)")
    log_stability_samples: Optional[int] = Field(
        None, ge=1, le=MAX_COUNT, description="the stability figures' fixed sample: the first this many "
        "validation points (default 32), or for conv models validation images, each linearized on the "
        "centre 6×6 window as stablenet analyze (default 1: about 15 s on one core for the 16-32-64-128 "
        "Fashion-MNIST network)")

    @model_validator(mode="before")
    @classmethod
    def _newton_lr_default(cls, data):
        """A Newton-type optimizer's lr is the first trial step of its line search: default 1.0."""
        if isinstance(data, dict) and data.get("optimizer") in NEWTON_OPTIMIZERS and "lr" not in data:
            return {**data, "lr": 1.0}
        return data

    @field_validator("hessian_samples", mode="before")
    @classmethod
    def _samples(cls, value):
        if value is None:
            return value
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or isinstance(value, int) and value < 1 or isinstance(value, float) and not 0 < value <= 1):
            raise ValueError("expected an integer ≥ 1 (points) or a fraction in (0, 1]")
        if isinstance(value, int) and value > MAX_COUNT:
            raise ValueError(f"expected at most {MAX_COUNT} points (an integer) or a fraction in (0, 1]")
        return value

    @model_validator(mode="after")
    def _milestones(self):
        ms = self.lr_milestones
        if self.schedule == "multistep":
            if not ms or ms[0] < 1 or ms[-1] > MAX_COUNT or any(b <= a for a, b in zip(ms, ms[1:])):
                raise ValueError(f"training.lr_milestones: {ms}; expected a non-empty increasing list of epochs "
                                 f"from 1 to {MAX_COUNT} with schedule 'multistep', e.g. [60, 80]")
        elif ms:
            raise ValueError(f"training.lr_milestones: {ms} applies to schedule 'multistep' only; expected it "
                             f"unset with schedule {self.schedule!r}")
        return self

    @model_validator(mode="after")
    def _logs(self):
        if len(set(self.log)) != len(self.log):
            raise ValueError(f"training.log: {self.log} names a logger twice; expected each at most once")
        if "tensorboard" not in self.log:
            for key in ("log_stability_every", "log_stability_samples"):
                if getattr(self, key):
                    raise ValueError(f"training.{key}: {getattr(self, key)} needs a training log; expected "
                                     f"training.log = [\"tensorboard\"] or {key} unset")
        return self

    @model_validator(mode="after")
    def _optimizer_options(self):
        newton = self.optimizer in NEWTON_OPTIMIZERS
        if not newton:
            for key in ("varpro", "block_coordinate", "cg_rtol", "cg_max_iter", "hessian_samples", "damping"):
                if key in self.model_fields_set and getattr(self, key) != TrainingConfig.model_fields[key].default:
                    value = getattr(self, key)
                    value = str(value).lower() if isinstance(value, bool) else repr(value)
                    raise ValueError(f"training.{key}: {value} applies to optimizer 'gauss_newton' "
                                     f"or 'newton' only; expected it unset with optimizer {self.optimizer!r}")
        if self.compile and newton:
            raise ValueError(f"training.compile: true applies to optimizer 'sgd', 'adam' or 'lbfgs'; expected false "
                             f"with optimizer {self.optimizer!r} (its curvature products are not compiled)")
        if self.mixed_precision != "none" and (self.optimizer not in ("sgd", "adam") or self.dtype != "float32"):
            raise ValueError(f"training.mixed_precision: {self.mixed_precision!r} needs optimizer 'sgd' or 'adam' and "
                             f"dtype 'float32'; got optimizer {self.optimizer!r}, dtype {self.dtype!r}")
        if self.label_smoothing and (newton or self.loss != "cross_entropy"):
            raise ValueError(f"training.label_smoothing: {self.label_smoothing} applies to loss 'cross_entropy' with "
                             f"optimizer 'sgd', 'adam' or 'lbfgs'; expected 0 with loss {self.loss!r} and "
                             f"optimizer {self.optimizer!r}")
        if self.block_coordinate and not self.varpro:
            raise ValueError("training.block_coordinate: true needs training.varpro = true (the classifier "
                             "solve of the alternation is VarPro's); expected varpro = true or "
                             "block_coordinate = false")
        if self.varpro and self.loss == "cross_entropy" and self.classifier_weight_decay == 0:
            raise ValueError("training.classifier_weight_decay: 0.0 with varpro = true and loss 'cross_entropy'; "
                             "expected > 0 (it regularizes VarPro's inner problem, which has no minimizer on "
                             "separable data without it), e.g. 1e-3")
        return self


class MultilevelConfig(Strict):
    """``[multilevel]``: cascadic (coarse-to-fine) training in depth.

    Haber & Ruthotto, "Stable architectures for deep neural networks" (2017), and Meganet train a
    network with few layers first, then *prolongate* its weights to a grid with twice the layers
    (h → h/2; θ(t) kept exactly by :meth:`stablenet.timegrid.ControlGrid.prolongate`) and continue
    training; the coarse solution is a good, cheap initial guess for the fine problem.  Each of the
    ``levels`` doubles every block's state steps and control points nt (so a block's nt/steps
    ratio is kept).  By default each block's configured ``steps`` and ``nt`` are the finest level;
    ``start_steps`` instead fixes the first level's steps of every block.
    """

    levels: int = Field(..., ge=1, le=16, description="number of levels (1–16); each level doubles every "
                        "block's steps and nt (control points follow by exact prolongation)")
    epochs_per_level: int | list[int] = Field(
        ..., description="epochs on each level: one number for every level or a list with one entry per "
        "level, coarsest first (replaces training.epochs)")
    start_steps: Optional[int] = Field(
        None, ge=1, le=MAX_COUNT, description="state steps of every block on the first (coarsest) level; default: "
        "each block's steps is the finest level, the first uses steps / 2^(levels − 1)")

    @field_validator("epochs_per_level", mode="before")
    @classmethod
    def _positive_epochs(cls, value):
        return count_or_counts(value, "level")

    @model_validator(mode="after")
    def _one_entry_per_level(self):
        if isinstance(self.epochs_per_level, list) and len(self.epochs_per_level) != self.levels:
            raise ValueError(f"multilevel.epochs_per_level: {self.epochs_per_level} has "
                             f"{len(self.epochs_per_level)} entries; expected {self.levels}, one per level "
                             f"(multilevel.levels = {self.levels}), or a single number")
        return self

    def epochs(self) -> list[int]:
        """Epochs of every level, coarsest first."""
        if isinstance(self.epochs_per_level, list):
            return list(self.epochs_per_level)
        return [self.epochs_per_level] * self.levels


class ParallelConfig(Strict):
    """``[parallel]``: layer-parallel training with MGRIT, optionally combined with data parallelism.

    Every ODE block's forward and backward propagation is solved by multigrid reduction in time
    (``gradient = "mgrit"``, :mod:`stablenet.parallel`; Günther et al., SIMODS 2020) with the time
    steps split over ``layer_ranks`` processes.  Launch with ``torchrun --nproc_per_node=P
    -m stablenet train CONFIG``: the P = layer_ranks × D processes form D data-parallel groups of
    ``layer_ranks`` layer-parallel ranks; each group takes 1/D of every batch and the gradients
    are averaged over the groups (the all-reduce DistributedDataParallel performs).  Without
    torchrun (one process) layer_ranks must be 1 and MGRIT runs serially (same iterations, for
    testing its effect on training).  Only rank 0 writes the run directory.
    """

    layer_ranks: int = Field(1, ge=1, le=MAX_COUNT, description="processes that split every block's time steps "
                             "(MGRIT); the world size given by torchrun must be a multiple of it")
    coarsening: int = Field(4, ge=2, le=MAX_COUNT,
                            description="MGRIT coarsening factor m (every m-th time point is a C-point)")
    max_levels: int = Field(3, ge=1, le=MAX_COUNT, description="MGRIT grid levels (1: sequential stepping, exact)")
    relaxation: str = Field("FCF", pattern=r"^F(CF)*$", description="MGRIT relaxation: F, FCF, FCFCF, …")
    max_iterations: int = Field(10, ge=0, le=MAX_COUNT, description="most MGRIT V-cycles per solve (forward and "
                                "adjoint); with tolerance = 0 a fixed number of cycles: inexact forward and gradient")
    tolerance: float = Field(1e-8, ge=0, description="MGRIT stops at a relative residual ≤ tolerance "
                             "(converged: the exact discrete gradient up to it)")
    fmg: bool = Field(False, description="start each MGRIT solve from a full-multigrid (nested iteration) guess")

    def mgrit_options(self) -> dict[str, Any]:
        """The keyword arguments of :class:`stablenet.parallel.MGRITOptions`."""
        return dict(m=self.coarsening, max_levels=self.max_levels, relax=self.relaxation,
                    max_iter=self.max_iterations, rtol=self.tolerance, fmg=self.fmg)



class Config(Strict):
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed for data, initialization and batch order")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    multilevel: Optional[MultilevelConfig] = Field(
        None, description="multilevel (cascadic) training in depth; see [multilevel]")
    parallel: Optional[ParallelConfig] = Field(
        None, description="layer-parallel (MGRIT) and data-parallel training under torchrun; see [parallel]")

    @field_validator("model", mode="before")
    @classmethod
    def _dense_by_default(cls, value):
        return default_kind(value)

    @model_validator(mode="after")
    def _multilevel_fits_the_blocks(self):
        if self.multilevel is not None:
            self.level_grids()
        return self

    @model_validator(mode="after")
    def _parallel_fits_the_model(self):
        """[parallel] solves every block by the gradient mode 'mgrit', whose own check decides
        which methods it can take."""
        if self.parallel is None:
            return self
        if self.training.optimizer in NEWTON_OPTIMIZERS:
            raise ValueError(f"parallel: layer-parallel training works with optimizers sgd, adam, lbfgs; "
                             f"expected one of them, got training.optimizer {self.training.optimizer!r}")
        for k, block in enumerate(self.model.blocks):
            if block.gradient != "autograd":
                raise ValueError(f"model.blocks.{k}.gradient: {block.gradient!r} with [parallel], which solves "
                                 f"every block by MGRIT; expected it unset ('autograd')")
            try:
                replace(block.spec(), gradient="mgrit", gradient_options={})
            except ArgumentError as error:
                raise ValueError(f"model.blocks.{k}.method: {block.method!r} with [parallel]: {error}") from None
        return self

    @model_validator(mode="after")
    def _adversarial_fits(self):
        """[training.adversarial] attacks the whole network from every process; [parallel] splits it."""
        if self.training.adversarial is not None and self.parallel is not None:
            raise ValueError(f"training.adversarial: {self.training.adversarial.attack!r} with [parallel] (the "
                             f"attack differentiates the whole network in one process; MGRIT splits it over "
                             f"processes); expected [parallel] or [training.adversarial] unset")
        return self

    @model_validator(mode="after")
    def _stability_logs_fit(self):
        """The stability figures linearize each whole block in one process; [parallel] splits it."""
        if self.training.log_stability_every and self.parallel is not None:
            raise ValueError(f"training.log_stability_every: {self.training.log_stability_every} with [parallel] "
                             f"(the figures linearize every whole block in one process; MGRIT splits the blocks "
                             f"over processes); expected 0")
        return self

    @model_validator(mode="after")
    def _mixed_precision_fits_the_model(self):
        if self.training.mixed_precision == "none":
            return self
        if self.parallel is not None:
            raise ValueError(f"training.mixed_precision: {self.training.mixed_precision!r} with [parallel] (MGRIT "
                             f"solves in the training dtype); expected 'none'")
        for key, gradient in self.model.gradients():
            if gradient != "autograd":
                raise ValueError(f"{key}: {gradient!r} with training.mixed_precision "
                                 f"{self.training.mixed_precision!r} (its backward pass recomputes outside "
                                 f"autocast); expected 'autograd'")
        return self

    @model_validator(mode="after")
    def _blocks_fit_the_optimizer(self):
        if self.training.optimizer in NEWTON_OPTIMIZERS:
            for key, gradient in self.model.gradients():
                if gradient != "autograd":
                    raise ValueError(
                        f"{key}: {gradient!r} cannot be used with training.optimizer "
                        f"{self.training.optimizer!r} (its curvature products differentiate the backward pass "
                        f"again); expected 'autograd'")
        return self

    @model_validator(mode="after")
    def _conv_model_fits(self):
        """kind = "conv" needs image data and a first-order optimizer; [data.augment] needs kind = "conv"."""
        conv = self.model.kind == "conv"
        if self.data.augment is not None and not conv:
            raise ValueError("data.augment: applies to convolutional models (model.kind = 'conv') only; "
                             "expected it unset with model.kind 'dense'")
        if not conv:
            return self
        if self.data.name not in IMAGE_DATASETS:
            raise ValueError(f"model.kind: 'conv' needs an image data set ({', '.join(IMAGE_DATASETS)}); "
                             f"got data.name {self.data.name!r}")
        if self.training.optimizer in NEWTON_OPTIMIZERS:
            raise ValueError(f"training.optimizer: {self.training.optimizer!r} is not available for "
                             f"model.kind 'conv'; expected sgd, adam or lbfgs")
        if self.parallel is not None:
            raise ValueError("parallel: layer-parallel training is not available for model.kind 'conv'; "
                             "expected [parallel] unset")
        return self

    def level_grids(self) -> list[list[tuple[int, int]]]:
        """(steps, nt) of every block on every training level, coarsest level first.

        Without ``[multilevel]`` one level: the blocks as configured (nt as the block specs resolve
        it).  With it, level ℓ has 2^(ℓ−1) times the steps and control points of the first level.
        ValueError (one line, naming the keys) when the configured grids cannot be halved down to
        the first level.
        """
        blocks = [(spec.steps, spec.nt) for spec in self.model.block_specs()]
        ml = self.multilevel
        if ml is None:
            return [blocks]
        first = [self._first_level(k, steps, nt) for k, (steps, nt) in enumerate(blocks)]
        return [[(steps << level, nt << level) for steps, nt in first] for level in range(ml.levels)]

    def _first_level(self, k: int, steps: int, nt: int) -> tuple[int, int]:
        """(steps, nt) of block k on the first level of [multilevel]."""
        ml, name = self.multilevel, self.model.block_key(k)
        if ml.start_steps is not None:
            start = ml.start_steps
            if (start * nt) % steps:
                raise ValueError(
                    f"multilevel.start_steps: {start} steps with {name}'s nt/steps = {nt}/{steps} "
                    f"give {start * nt / steps:g} control points on the first level; expected "
                    f"start_steps·nt/steps to be a whole number")
            finest = max(start, start * nt // steps) << (ml.levels - 1)
            if finest > MAX_COUNT:
                raise ValueError(
                    f"multilevel.start_steps: {start} steps doubled over {ml.levels} levels give {finest} "
                    f"steps or control points on the finest level of {name}; expected at most {MAX_COUNT}")
            return start, start * nt // steps
        factor = 2 ** (ml.levels - 1)
        for key, value in (("steps", steps), ("nt", nt)):
            if value % factor:
                raise ValueError(
                    f"multilevel.levels: {ml.levels} levels start from {name}.{key} / "
                    f"2^(levels − 1) = {value}/{factor}, not a whole number; expected {key} divisible "
                    f"by {factor} (or set multilevel.start_steps)")
        return steps // factor, nt // factor
