"""Validation errors as the one line the CLI prints: ``key: problem (got value)``, one part per
problem, joined by ``; ``."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from ..._checks import ArgumentError
from .model import MODEL_KINDS


class ConfigError(ValueError):
    """A configuration that does not match the schema; the message is one line per problem."""


def key_text(part) -> str:
    """A key as written in the message: quoted when it is empty or has odd characters."""
    text = str(part)
    return text if text and text.isprintable() and " " not in text and "." not in text else repr(text)


#: the members of an ``int | float`` union, which pydantic appends to the location of each failed member
_UNION_MEMBERS = ("float", "int")


def _errors(error: ValidationError) -> list[dict[str, Any]]:
    """The errors of ``error``, those of the members of an ``int | float`` union (data.options values)
    merged into one at the value's own location (the float member's message: the more general)."""
    errors = error.errors()
    merged = []
    for e in errors:
        loc = e["loc"]
        if loc and loc[-1] in _UNION_MEMBERS:
            siblings = [o for o in errors if o["loc"][:-1] == loc[:-1] and o["loc"][-1] in _UNION_MEMBERS]
            if {o["loc"][-1] for o in siblings} == set(_UNION_MEMBERS):
                if loc[-1] == "float":
                    merged.append({**e, "loc": loc[:-1]})
                continue
        merged.append(e)
    return merged


def _location(loc: tuple) -> tuple:
    """The location as the file writes it: without the tag pydantic inserts for the kind of [model]."""
    if len(loc) > 1 and loc[0] == "model" and loc[1] in MODEL_KINDS:
        return (loc[0], *loc[2:])
    return tuple(loc)


def _line(e: dict[str, Any]) -> str:
    """One error as ``key: problem (got value)``."""
    loc = _location(e["loc"])
    key = ".".join(key_text(p) for p in loc) or "config"
    cause = (e.get("ctx") or {}).get("error")
    if isinstance(cause, ArgumentError):  # a library spec's error: the key is the table's plus its argument
        message = str(cause).removeprefix(f"{cause.argument}=")
        return f"{key + '.' if loc else ''}{key_text(cause.argument)}: {message}"
    if e["type"] == "union_tag_invalid":  # an unknown model.kind
        expected = " or ".join(repr(kind) for kind in MODEL_KINDS)
        return f"{key}.kind: Input should be {expected} (got {e['input'].get('kind')!r})"
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "value_error" and re.match(rf"{re.escape(key if loc else '')}[\w.]*: ", msg):
        return msg  # a cross-field check that names its key, value and expectation itself
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    elif e["type"] == "missing":
        msg = "required key is missing"
    got = e.get("input")
    suffix = "" if e["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r})"
    return f"{key}: {msg}{suffix}"


def format_error(error: ValidationError) -> str:
    """The one-line report of a pydantic ``ValidationError``."""
    return "; ".join(_line(e) for e in _errors(error))
