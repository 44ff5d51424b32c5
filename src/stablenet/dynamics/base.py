"""The dynamics interface: right-hand sides f(Y, θ) whose weights live on a control grid.

A dynamics module holds its weights stacked along a leading *control* dimension of size nt (one
slice per control point, see :mod:`stablenet.timegrid`) and evaluates f for one slice:
``forward(y, *theta)``.  It never interpolates or steps in time itself; the
:class:`~stablenet.block.ODEBlock` asks :meth:`Dynamics.control_weights` for the stacked weights,
interpolates them at every stage the integrator needs, and calls ``forward`` with one stage's
slices.  Constraints such as antisymmetry are torch parametrizations of the stored weight, so they
apply before interpolation and every integrator accepts them unchanged (Meganet's idea).

Two-stream (Hamiltonian) dynamics set ``two_stream = True`` and also provide the stream-wise
right-hand sides ``dy(z, *theta)`` and ``dz(y, *theta)`` that Verlet needs.  A dynamics whose f is
an acceleration, Y'' = f(Y), sets ``second_order = True`` (it needs a second-order integrator).

Construction options: a dynamics' options are the keyword parameters of its ``__init__`` beyond
``width`` and ``nt`` (:meth:`Dynamics.options`), so :meth:`Dynamics.from_options` builds any
registered dynamics from one mapping of options without knowing its name, and
:meth:`Dynamics.check_options` runs the constructor's own checks without allocating weights.
"""

from __future__ import annotations

import inspect
import math
import re
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .. import _checks
from ..timegrid import ControlGrid


#: η of the ``"smooth_relu"`` activation
SMOOTH_RELU_ETA = 0.1


def smooth_relu(x: torch.Tensor, eta: float = SMOOTH_RELU_ETA) -> torch.Tensor:
    """ReLU with the kink replaced by a quadratic on |x| ≤ η (C¹; Meganet's smoothReluActivation).

    0 for x < −η, x²/(4η) + x/2 + η/4 for |x| ≤ η, x for x > η.
    """
    quad = x * x / (4 * eta) + x / 2 + eta / 4
    return torch.where(x > eta, x, torch.where(x < -eta, torch.zeros_like(x), quad))


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "smooth_relu": smooth_relu,
    "identity": lambda x: x,
}


def _smooth_relu_pullback(v: torch.Tensor, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    # σ'(a) = clamp(a, −η, η)/(2η) + ½: 0 below −η, 1 above η, the quadratic's slope between
    eta = SMOOTH_RELU_ETA
    return torch.clamp(a, -eta, eta).div_(2 * eta).add_(0.5).mul_(v)


#: v ⊙ σ'(a) from the pre-activation a and the value s = σ(a): the pullback of each activation
#: of :data:`ACTIVATIONS` as the explicit vector-Jacobian products (:meth:`Dynamics.vjp`) use it
#: (tanh and relu in terms of s, as torch's own backward computes them); an activation missing
#: here makes :meth:`Dynamics.vjp` return None (the gradient modes then use autograd)
ACTIVATION_PULLBACKS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "tanh": lambda v, a, s: torch.ops.aten.tanh_backward(v, s),
    "relu": lambda v, a, s: torch.ops.aten.threshold_backward(v, s, 0),
    "smooth_relu": _smooth_relu_pullback,
    "identity": lambda v, a, s: v,
}

#: ``pullback(v, scale, add_to, theta_grads)`` of :meth:`Dynamics.vjp`
Pullback = Callable[[torch.Tensor, float, "torch.Tensor | None", tuple], torch.Tensor]


def addmm_into(add_to: torch.Tensor | None, m1: torch.Tensor, m2: torch.Tensor, scale: float) -> torch.Tensor:
    """add_to + scale·m1 m2, added into ``add_to`` in place (None: a new tensor)."""
    if add_to is None:
        out = torch.mm(m1, m2)
        return out if scale == 1.0 else out.mul_(scale)
    return add_to.addmm_(m1, m2, alpha=scale)


NORMALIZATIONS = (None, "layer")


def _layer_norm(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:])


#: set while :meth:`Dynamics.check_options` builds a dynamics only to run its checks
_CHECKING: ContextVar[bool] = ContextVar("stablenet_dynamics_checking", default=False)


@contextmanager
def _checking():
    token = _CHECKING.set(True)
    try:
        yield
    finally:
        _CHECKING.reset(token)


@cache
def _options(cls: type) -> dict[str, Any]:
    """The keyword parameters of ``cls.__init__`` but width and nt, with their defaults; through
    ``**kwargs`` also those of the base classes' constructors it passes them on to."""
    options: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        for p in params:
            if p.name not in ("self", "width", "nt") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                options.setdefault(p.name, p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return options


class Dynamics(nn.Module):
    """Base class: weights with a leading control dimension, f evaluated one slice at a time.

    Subclasses register each time-dependent weight with :meth:`_control_parameter` (in the order
    ``forward`` takes them) and implement ``forward(y, *theta)``.
    """

    two_stream: ClassVar[bool] = False
    #: f is an acceleration: the block integrates Y'' = f(Y) (needs a second-order integrator,
    #: leapfrog; :func:`stablenet.block.check_compatible`)
    second_order: ClassVar[bool] = False
    # the dimension of a state that holds the ``width`` features: -1 for dense states
    # (batch, width), 1 for images (batch, channels, H, W)
    feature_dim: ClassVar[int] = -1

    def __init__(self, width: int, *, nt: int = 1, activation: str = "tanh",
                 normalization: str | None = None):
        super().__init__()
        self.width = _checks.positive_int("width", width)
        _checks.positive_int("nt", nt)
        _checks.choice("activation", activation, ACTIVATIONS)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {list(NORMALIZATIONS)}, got {normalization!r}")
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]
        self.normalization = normalization
        self._control_names: list[str] = []
        self._nt = nt

    # -- construction from options ---------------------------------------------------------------
    @classmethod
    def options(cls) -> dict[str, Any]:
        """The construction options and their defaults: the keyword parameters of ``__init__``
        other than ``width`` and ``nt`` (e.g. ``activation``, ``normalization``, ``hidden``)."""
        return dict(_options(cls))

    @classmethod
    def from_options(cls, width: int, *, nt: int = 1, **options) -> "Dynamics":
        """This dynamics built from a mapping of options that may name options of other dynamics.

        An option this class does not take is dropped if it is *unset*: ``None``, or the default
        of every registered dynamics that takes it (``gamma = 0.0``); set to anything else it is
        an :class:`~stablenet._checks.ArgumentError` naming the option and the dynamics that take
        it.  So one table of options (a config file's block) builds every dynamics.
        """
        taken = _options(cls)
        for key, value in options.items():
            if key not in taken and not _unset(key, value):
                raise _checks.ArgumentError(key, f"{key}={value!r} {_not_an_option(cls, key)}")
        return cls(width, nt=nt, **{k: v for k, v in options.items() if k in taken})

    @classmethod
    def check_options(cls, width: int, **options) -> None:
        """Run :meth:`from_options` and the constructor's own checks without allocating weights
        (they get a control dimension of size 0); an error of the constructor that names one of
        its parameters first (``"kernel_size must be …"``) becomes an ``ArgumentError`` for it."""
        try:
            with _checking():
                cls.from_options(width, nt=1, **options)
        except _checks.ArgumentError:
            raise
        except ValueError as error:
            first = re.match(r"\w+", str(error))
            if first and first.group() in ("width", *_options(cls)):
                raise _checks.ArgumentError(first.group(), str(error)) from None
            raise

    # -- construction helpers --------------------------------------------------------------------
    def _control_parameter(self, name: str, *shape: int, fan_in: int | None = None) -> None:
        """Register a weight of shape (nt, *shape): normal with std 1/√fan_in, or zero if no fan-in."""
        checking = _CHECKING.get()  # no weights, and no draws from the random state
        data = torch.zeros(0 if checking else self._nt, *shape)
        if fan_in is not None and not checking:
            data.normal_(0.0, 1.0 / math.sqrt(fan_in))
        self.register_parameter(name, nn.Parameter(data))
        self._control_names.append(name)

    def _pre_activation(self, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """σ(N(x) + b): the activation of the (optionally normalized) pre-activation."""
        if self.normalization == "layer":
            x = _layer_norm(x)
        return self.activation(x + b)

    # -- the interface the block uses --------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The dynamics' class name (torch parametrizations wrap the class in a subclass)."""
        cls = type(self)
        return cls.__bases__[0].__name__ if parametrize.is_parametrized(self) else cls.__name__

    @property
    def nt(self) -> int:
        """Number of control points the weights live on."""
        return getattr(self, self._control_names[0]).shape[0]

    @property
    def control_names(self) -> tuple[str, ...]:
        """Names of the time-dependent weights, in the order ``forward`` takes them."""
        return tuple(self._control_names)

    def control_weights(self) -> tuple[torch.Tensor, ...]:
        """The effective stacked weights (nt, ...), parametrizations applied, forward's order."""
        return tuple(getattr(self, name) for name in self._control_names)

    def forward(self, y, *theta):  # pragma: no cover - abstract
        raise NotImplementedError

    def vjp(self, arg: torch.Tensor, *theta: torch.Tensor, stream: str | None = None
            ) -> tuple[torch.Tensor, Pullback] | None:
        """f at one stage together with its explicit vector-Jacobian product, or None.

        ``stream`` None evaluates ``forward(arg, *theta)``; ``"dy"``/``"dz"`` the stream-wise
        right-hand sides ``dy(arg, *theta)``/``dz(arg, *theta)`` of a two-stream dynamics.
        Returns ``(out, pullback)`` (the shape of ``torch.func.vjp``): ``out`` the value, equal to
        what that method returns (no autograd graph), and ``pullback(v, scale, add_to,
        theta_grads)``, which returns ``add_to + scale·J_argᵀv``, added into ``add_to`` in place
        (``add_to`` None: a new tensor), and adds ``scale·J_θᵀv`` in place into ``theta_grads``,
        tensors shaped like ``theta``.  The pullback reuses what the evaluation computed (σ(a),
        a), so a stage costs one evaluation and one VJP, with no autograd graph.

        The default, None, means "no explicit VJP here": the memory-lean gradient modes
        (``gradient="reversible"``) then record the evaluation with autograd and differentiate
        it with one ``torch.autograd.grad``.  The dense dynamics override it for the
        configurations they can write by hand (no normalization, a 2-D state, an activation of
        :data:`ACTIVATION_PULLBACKS`); tests/test_dynamics_vjp.py checks each against autograd.
        """
        return None

    def _activation_pullback(self, arg: torch.Tensor):
        """The activation's entry of :data:`ACTIVATION_PULLBACKS` where an explicit VJP of a dense
        σ(linear) layer applies (no normalization, a (batch, width) state), else None."""
        if self.normalization is not None or arg.dim() != 2:
            return None
        return ACTIVATION_PULLBACKS.get(self.activation_name)

    @torch.no_grad()
    def prolongate(self, interpolation: str = "constant") -> None:
        """Refine the control grid nt → 2·nt in place, keeping θ(t) exactly (multilevel training).

        Replaces the parameters: build the optimizer after prolongating.  Parametrized weights are
        refined through their unconstrained original (the constraints here are linear, so θ(t) is
        kept exactly).
        """
        grid = ControlGrid(1.0, self.nt, interpolation)
        for name in self._control_names:
            if parametrize.is_parametrized(self, name):
                owner, attr = self.parametrizations[name], "original"
            else:
                owner, attr = self, name
            old = getattr(owner, attr)
            setattr(owner, attr, nn.Parameter(grid.prolongate(old.detach()), requires_grad=old.requires_grad))

    def extra_repr(self) -> str:
        norm = f", normalization={self.normalization!r}" if self.normalization else ""
        return f"width={self.width}, nt={self.nt}, activation={self.activation_name!r}{norm}"


def _unset(key: str, value: Any) -> bool:
    """Whether an option's value means "not set": None, or every registered taker's default."""
    from . import DYNAMICS

    defaults = [_options(c)[key] for c in DYNAMICS.values() if key in _options(c)]
    return value is None or (bool(defaults) and all(d == value and isinstance(d, bool) == isinstance(value, bool)
                                                     for d in defaults))


def _not_an_option(cls: type, key: str) -> str:
    """The end of the message for an option ``cls`` does not take."""
    from . import DYNAMICS, dynamics_name

    takers = [n for n, c in DYNAMICS.items() if c.feature_dim == cls.feature_dim and key in _options(c)]
    own = dynamics_name(cls)
    if takers:
        return f"applies to dynamics {_checks.listing(takers, 'and')} only, not {own}"
    return f"is not an option of dynamics {own} (its options: {', '.join(_options(cls)) or 'none'})"
