"""Reading configurations: TOML files, ``--set`` overrides, a run's saved ``config.json``, and
the differences between two of them (the resume check's report)."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ...dynamics import DYNAMICS
from .errors import ConfigError, format_error, key_text
from .model import MODEL_KINDS
from .schema import Config


def parse_config(raw: dict[str, Any]) -> Config:
    """Validate a configuration dictionary."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {format_error(exc)}") from None


def parse_saved_config(raw: dict[str, Any]) -> Config:
    """Validate a run directory's config.json.  Runs written by earlier 0.1.0 builds dumped every
    ``[model]`` key of both kinds at its default; those of the other kind are dropped here (a key
    of the other kind set to anything else is still an error).  Those builds also ignored a dense
    block's ``gamma`` unless its dynamics was antisymmetric: an option its dynamics does not take
    is dropped from a saved block."""
    model = raw.get("model") if isinstance(raw, dict) else None
    if isinstance(model, dict):
        own = MODEL_KINDS.get(model.get("kind", "dense"), MODEL_KINDS["dense"])
        defaults = {k: f.get_default(call_default_factory=True) for other in MODEL_KINDS.values()
                    for k, f in other.model_fields.items() if k not in own.model_fields}
        model = {k: v for k, v in model.items() if not (k in defaults and v == defaults[k])}
        if isinstance(model.get("blocks"), list):
            model["blocks"] = [_taken_options(block) for block in model["blocks"]]
        raw = {**raw, "model": model}
    return parse_config(raw)


def _taken_options(block: Any) -> Any:
    """A saved block without the dynamics options its dynamics does not take."""
    cls = DYNAMICS.get(block.get("dynamics", "antisymmetric")) if isinstance(block, dict) else None
    if cls is None:
        return block
    options = {key for c in DYNAMICS.values() for key in c.options()}
    return {k: v for k, v in block.items() if k not in options or k in cls.options()}


_MISSING = object()


def _show(value: Any) -> str:
    """A value of a JSON dump as a difference line writes it (JSON: strings quoted, null, true)."""
    if value is _MISSING:
        return "missing"
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)


def _same(a: Any, b: Any) -> bool:
    """Equal leaves of two JSON dumps: 1 and 1.0 are the same number, true and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (a != a and b != b)  # nan equals nan here
    return type(a) is type(b) and a == b


#: keys a resume may change: where the data lies, and what is logged (not what is computed)
RESUME_MAY_CHANGE = ("data.data_dir", "training.log", "training.log_stability_every", "training.log_stability_samples")


def config_differences(saved: Any, current: Any, ignore: Iterable[str] = RESUME_MAY_CHANGE) -> list[str]:
    """The differences between two JSON dumps of configurations (``Config.model_dump(mode="json")``:
    nested dicts and lists), one line per differing key as its dotted path with both values::

        training.lr: 0.01 in the run, 0.1 now
        model.blocks.0.steps: 16 in the run, 32 now
        training.momentum: missing in the run, 0.9 now

    ``saved`` is the run's configuration, ``current`` the one given now; keys are listed in the order
    of ``saved`` (then those only in ``current``), list entries by index.  A key, or a list entry,
    present on one side only is "missing" on the other; a table on one side and a value on the other
    is one line with both.  ``ignore``: dotted keys (and everything below them) left out — by
    default :data:`RESUME_MAY_CHANGE`: data.data_dir, which may move between a run and its resume,
    and the logging keys (``training.log``, ``log_stability_*``), which change what is written
    beside the run, not the run.  [] when they agree.
    """
    skip = set(ignore)
    lines: list[str] = []

    def walk(a: Any, b: Any, path: tuple[str, ...]) -> None:
        if ".".join(path) in skip:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in [*a, *(k for k in b if k not in a)]:
                walk(a.get(key, _MISSING), b.get(key, _MISSING), (*path, str(key)))
        elif isinstance(a, list) and isinstance(b, list):
            for i in range(max(len(a), len(b))):
                walk(a[i] if i < len(a) else _MISSING, b[i] if i < len(b) else _MISSING, (*path, str(i)))
        elif a is _MISSING or b is _MISSING or not _same(a, b):
            key = ".".join(key_text(p) for p in path) or "config"
            lines.append(f"{key}: {_show(a)} in the run, {_show(b)} now")

    walk(saved, current, ())
    return lines


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (value in TOML syntax, bare words as strings)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = raw
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {key}: {part!r} is not an index into a list of {len(node)}")
                node = node[int(part)]
            else:
                node = node.setdefault(part, [] if nxt.isdigit() else {})
        last = parts[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ConfigError(f"--set {key}: {last!r} is not an index into a list of {len(node)}")
            node[int(last)] = _parse_value(value.strip())
        elif isinstance(node, dict):
            node[last] = _parse_value(value.strip())
        else:
            raise ConfigError(f"--set {key}: {'.'.join(parts[:-1])} is not a table")
    return raw


def read_config_text(path: str | Path) -> str:
    """The text of a TOML configuration file (UTF-8, a leading byte-order mark dropped); ConfigError
    (one line naming the file) for a missing file, a directory, an unreadable or a binary file."""
    path = Path(path)
    name = repr(str(path))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {name} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {name} is a directory; expected a TOML file") from None
    except OSError as exc:
        if path.is_dir():  # Windows: PermissionError for a directory
            raise ConfigError(f"config file {name} is a directory; expected a TOML file") from None
        raise ConfigError(f"cannot read config file {name}: {exc.strerror or exc}") from None
    if b"\x00" in data:  # valid UTF-8, but no text file has it
        raise ConfigError(f"config file {name} is not a UTF-8 TOML text file (NUL byte at offset "
                          f"{data.index(0)}: binary data)")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # tomllib refuses a byte-order mark
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {name} is not a UTF-8 TOML text file (byte 0x{data[exc.start]:02x} at "
                          f"offset {exc.start} is not UTF-8)") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> tuple[Config, dict[str, Any]]:
    """Read, override and validate a TOML configuration; returns (config, raw dictionary)."""
    path = Path(path)
    text = read_config_text(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    raw = apply_overrides(raw, overrides or [])
    return parse_config(raw), raw
