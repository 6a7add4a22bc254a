"""Typed dataclass fields from command-line strings (``--set key=value``), shared by the strategy
configs (:mod:`benchmark.strategy.config`) and the plugin options
(:mod:`benchmark.strategy.plugins`) without either importing the other."""
from __future__ import annotations

import json
import typing
from typing import Any


def coerce_field(cls: type, name: str, value: Any) -> Any:
    """Convert ``value`` (a string from the command line, or JSON) to ``cls.name``'s type."""
    hints = typing.get_type_hints(cls)
    kind = hints[name]
    origin = typing.get_origin(kind)
    if not isinstance(value, str):
        return tuple(value) if origin is tuple and isinstance(value, list) else value
    if kind is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected true/false, got {value!r}")
    if kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} is not {'an' if kind is int else 'a'} "
                             f"{kind.__name__}") from None
    if origin is tuple:
        text = value.strip()
        items = json.loads(text) if text.startswith("[") else [s for s in text.split(",") if s]
        return tuple(str(s).strip() for s in items)
    return value
