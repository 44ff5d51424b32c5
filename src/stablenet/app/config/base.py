"""What every table of the configuration shares: the bounds of counts, strict tables, and
choices that are the *live* contents of a registry (dynamics, integrators, gradient modes)."""

from __future__ import annotations

from typing import Annotated, Any, Callable, Iterable

from pydantic import BaseModel, BeforeValidator, ConfigDict

from ..._checks import listing

#: upper bound of every count (epochs, steps, nt, batch size, iterations, …): the largest C int, so that
#: no count overflows a 32-bit index or a C ``int`` argument (torch.set_num_threads, …)
MAX_COUNT = 2**31 - 1
#: upper bound of feature widths and channel counts: nt·width² weights of one block stay below 2**63
MAX_WIDTH = 2**16
#: upper bound of the seed: torch.manual_seed and torch.Generator.manual_seed take −2**63 … 2**64 − 1
#: (else "Overflow when unpacking long long"); the seed is ≥ 0 and a signed int64 here
MAX_SEED = 2**63 - 1
#: upper bound of training.threads (torch CPU threads; more than the cores only slows torch down)
MAX_THREADS = 1024
#: upper bound of model.kernel_size and data.augment.padding (pixels; images are far smaller)
MAX_PIXELS = 1024


class Strict(BaseModel):
    # allow_inf_nan=False: every float of every table (lists and tables of floats included) must be
    # finite; TOML has inf and nan, which would otherwise pass the range checks (inf > 0) or fail late
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Choices:
    """A string key whose value must be one of ``names()``, asked when a config is read: the
    registries' current names, so that a dynamics, integrator or gradient mode registered after
    this module was imported is accepted (a ``Literal`` would be frozen at import).  ``refuse``
    may raise a more helpful ``ValueError`` first.  The reference (``config-docs``) lists
    ``names()``."""

    def __init__(self, names: Callable[[], Iterable[str]], refuse: Callable[[Any], None] | None = None):
        self.names, self.refuse = names, refuse

    def __call__(self, value: Any) -> Any:
        if self.refuse is not None:
            self.refuse(value)
        names = list(self.names())
        if value not in names:
            raise ValueError(f"Input should be {listing(names)}")
        return value


def one_of(names: Callable[[], Iterable[str]], refuse: Callable[[Any], None] | None = None) -> Any:
    """The annotation of a key whose value is one of ``names()`` (see :class:`Choices`)."""
    choices = Choices(names, refuse)
    return Annotated[str, BeforeValidator(choices), choices]


def is_count(value: Any, top: float = MAX_COUNT) -> bool:
    """Whether ``value`` is an integer in 1 … top (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= top


def count_or_counts(value: Any, per: str) -> Any:
    """Validate an integer in 1 … MAX_COUNT or a non-empty list of them (one per stage / level)."""
    values = value if isinstance(value, list) else [value]
    if values and all(is_count(v) for v in values):
        return value
    if values and all(is_count(v, top=float("inf")) for v in values):
        raise ValueError(f"expected integers of at most {MAX_COUNT}, one number or one per {per}")
    raise ValueError(f"expected an integer ≥ 1 or a non-empty list of integers ≥ 1, one per {per}")
