"""The Markdown reference of every key (``stablenet config-docs``, docs/configuration.md),
generated from the schema: choices of registry keys are the registries' current names."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from .base import Choices
from .model import MODEL_KINDS, BlockConfig
from .schema import AdversarialConfig, AugmentConfig, Config, DataConfig, MultilevelConfig, ParallelConfig, TrainingConfig

#: the keys that hold a table of their own (documented in its own section)
_TABLES = ("data", "model", "training", "multilevel", "parallel", "augment", "adversarial")


def _choices(values) -> str:
    return "one of " + ", ".join(f"`{v}`" for v in values)


def _type_name(annotation, metadata=()) -> str:
    """A readable type for the reference table: choices spelled out, Optional as "or none"."""
    for item in metadata:
        if isinstance(item, Choices):
            return _choices(item.names())
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0], annotation.__metadata__)
    if origin is Literal:
        return _choices(args)
    if origin is Union or origin is UnionType:
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or none" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "table"
    return getattr(annotation, "__name__", str(annotation))


def _rows(model: type[BaseModel], skip=()) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        if name in _TABLES or name in skip:
            continue
        if field.is_required():
            default = "**required**"
        elif field.default_factory is not None:
            default = f"`{field.default_factory()!r}`".replace("'", '"')
        else:
            default = f"`{field.default!r}`".replace("'", '"')
        out.append(f"| `{name}` | {_type_name(field.annotation, field.metadata)} | {default} | "
                   f"{field.description or ''} |")
    return out


def _model_rows() -> list[str]:
    """``[model]``: ``kind``, then the keys of every kind (their descriptions say which)."""
    kind = MODEL_KINDS["dense"].model_fields["kind"]
    rows = [f"| `kind` | {_choices(MODEL_KINDS)} | `\"dense\"` | {kind.description} |"]
    for table in MODEL_KINDS.values():
        rows += _rows(table, skip=("kind",))
    return rows


def config_reference() -> str:
    """Markdown reference of every key, generated from the schema."""
    out = []
    for title, model in [("top level", Config), ("[data]", DataConfig),
                         ("[data.augment] (optional; convolutional models)", AugmentConfig), ("[model]", None),
                         ("[[model.blocks]]", BlockConfig), ("[training]", TrainingConfig),
                         ("[training.adversarial] (optional)", AdversarialConfig),
                         ("[multilevel] (optional)", MultilevelConfig),
                         ("[parallel] (optional; torchrun)", ParallelConfig)]:
        out.append(f"### {title}\n\n| key | type | default | meaning |\n|---|---|---|---|")
        out += _model_rows() if model is None else _rows(model)
        out.append("")
    from ...data import DATASETS

    out.append("### data options (`[data] options = { … }`)\n\n| data set | options and defaults | what it is |\n|---|---|---|")
    for name, spec in DATASETS.items():
        options = ", ".join(f"`{k} = {v}`" for k, v in spec.options.items())
        out.append(f"| `{name}` | {options} | {spec.description} |")
    out.append("")
    return "\n".join(out)
