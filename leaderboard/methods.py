"""What the leaderboard knows of a method: its facts (display name, LaTeX name, role, row in
the paper's Table 2), read from the run folders.

A run's ``result.json`` carries them as ``method_info`` (written by the runner from the
strategy class, :func:`benchmark.strategy.registry.method_info`).  :func:`remember` records
them when a run is loaded; a method no loaded run described (result files written before
``method_info``) is looked up in the strategy registry, and a method the registry does not know
either gets the defaults (its own name, role ``method``, not in the paper).  No method is named
here: a run label ``es_moe+replay`` is shown as its method's display name + its plugins'.
"""
from __future__ import annotations

import math

from benchmark.identity import split_label

FACT_KEYS = ("display_name", "latex_name", "role", "paper_row")
ROLES = ("method", "upper_bound", "lower_bound")     # benchmark.strategy.registry.ROLES
# Plugin name -> display name (the CL plugins composed into a run label).
PLUGIN_DISPLAY: dict[str, str] = {"replay": "Replay", "ewc": "EWC", "lwf": "LwF"}

_FROM_RESULTS: dict[str, dict] = {}      # method -> facts read from a result.json
_REGISTRY_FACTS: dict[str, dict] = {}    # method -> facts from the strategy registry
_DISCOVERED = False


def check_info(info, where) -> dict:
    """``result.json``'s ``method_info``, validated: the four facts of the right kinds."""
    from benchmark.io import DataError

    fix = "rerun the run with the current code (or delete method_info to use the registry's)"
    if not isinstance(info, dict) or any(k not in info for k in FACT_KEYS):
        raise DataError(where, f"method_info {info!r} lacks some of {', '.join(FACT_KEYS)}", fix)
    row = info["paper_row"]
    if not isinstance(info["display_name"], str) or not isinstance(info["latex_name"], str) \
            or info["role"] not in ROLES or not (row is None or isinstance(row, int)):
        raise DataError(where, f"method_info {info!r} has a fact of the wrong kind (display and "
                        f"LaTeX names are strings, role one of {', '.join(ROLES)}, paper_row an "
                        "integer or null)", fix)
    return {k: info[k] for k in FACT_KEYS}


def remember(method: str, info: dict) -> None:
    """Record the facts a run folder gives for registered method ``method`` (no plugins)."""
    _FROM_RESULTS[method] = dict(info)


def _defaults(method: str) -> dict:
    return {"display_name": method, "latex_name": "", "role": "method", "paper_row": None}


def _registry(needed: str | None = None):
    """The strategy registry, its strategies discovered once (when ``needed`` is not registered
    yet, or always for ``None``)."""
    global _DISCOVERED
    from benchmark.strategy import registry

    if not _DISCOVERED and (needed is None or needed not in registry.available()):
        registry.discover()
        _DISCOVERED = True
    return registry


def _registry_facts(method: str) -> dict | None:
    """The registry's facts of ``method``, or None when it is not registered."""
    if method not in _REGISTRY_FACTS:
        registry = _registry(method)
        if method not in registry.available():
            return None
        _REGISTRY_FACTS[method] = registry.method_info(method)
    return _REGISTRY_FACTS[method]


def facts(method: str) -> dict:
    """The facts of registered method ``method`` (a name without plugins)."""
    return _FROM_RESULTS.get(method) or _registry_facts(method) or _defaults(method)


def display_name(label: str) -> str:
    """Table name of a run label: the method's display name, then each plugin's, joined by
    `` + `` (``es_moe+replay`` -> ``ES-MoE + Replay``)."""
    base, plugins = split_label(label)
    return " + ".join([facts(base)["display_name"], *(PLUGIN_DISPLAY.get(p, p) for p in plugins)])


def latex_name(label: str) -> str | None:
    """The method's own LaTeX name for a plain label (None: escape :func:`display_name`)."""
    base, plugins = split_label(label)
    return None if plugins else (facts(base)["latex_name"] or None)


def sort_key(label: str) -> tuple[float, str, str]:
    """The paper's row order for its methods (a composed label ``es_moe+replay`` right after its
    method), then the rest by name."""
    base, plugins = split_label(label)
    row = facts(base)["paper_row"]
    return (math.inf if row is None else float(row), base.lower(), "+".join(plugins))


def with_role(role: str, methods) -> list[str]:
    """The plain labels among ``methods`` whose method has ``role`` (in :func:`sort_key` order);
    with none among them, the registry's methods of that role."""
    found = sorted({m for m in methods if not split_label(m)[1] and facts(m)["role"] == role},
                   key=sort_key)
    return found or _registry().with_role(role)
