"""Run identity of composed methods: ``es_moe`` + the replay plugin is the system ``es_moe+replay``.

A run's **label** is its registered method name followed by the composable CL plugins it uses
(``with_plugins``, ``--with``), in their order, joined by ``+``.  The label is what a run is
called everywhere a run is named: ``result.json``'s ``"method"`` (and so the leaderboard's rows,
groups and statistics), the sweep's run folders (``OUT/<label>/<setting>/...``) and ``l2emg
sweep --methods es_moe,es_moe+replay``.  ``config.json`` keeps the registered name in
``"method"`` and the plugins in ``method_config.with_plugins`` (both in the config hash).

Pure string functions and :class:`RunKey` (who a run is): the leaderboard and the
orchestration import them without any training code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

SEPARATOR = "+"


def plugin_list(value) -> list[str]:
    """``"ewc,replay"`` / ``["ewc", "replay"]`` / ``None`` -> ``["ewc", "replay"]``."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(s).strip() for s in items if str(s).strip()]


def run_label(method: str, plugins: Iterable[str] = ()) -> str:
    """``("es_moe", ["replay"])`` -> ``"es_moe+replay"``; no plugins -> the method name."""
    return SEPARATOR.join([method, *plugin_list(list(plugins))])


def split_label(label: str) -> tuple[str, list[str]]:
    """Inverse of :func:`run_label`: ``"es_moe+ewc+replay"`` -> ``("es_moe", ["ewc", "replay"])``."""
    method, *plugins = [p.strip() for p in str(label).split(SEPARATOR)]
    return method, [p for p in plugins if p]


def merge_plugins(*groups) -> list[str]:
    """Plugin lists joined in order, each plugin once (``--methods x+replay --with ewc,replay``
    -> ``["replay", "ewc"]``)."""
    out: list[str] = []
    for group in groups:
        for p in plugin_list(group):
            if p not in out:
                out.append(p)
    return out


def overrides_plugins(overrides: dict | None) -> list[str]:
    """The plugins a method-config override dict asks for (``with_plugins`` or its ``with``
    alias, as ``--with`` / ``--set with_plugins=...`` give them)."""
    overrides = overrides or {}
    return merge_plugins(overrides.get("with_plugins"), overrides.get("with"))


def with_label_plugins(label: str, overrides: dict | None) -> tuple[str, dict]:
    """``(label, method overrides)`` -> ``(registered method, overrides)`` whose
    ``with_plugins`` holds the label's plugins followed by those the overrides already named."""
    method, plugins = split_label(label)
    out = {k: v for k, v in (overrides or {}).items() if k not in ("with_plugins", "with")}
    merged = merge_plugins(plugins, overrides_plugins(overrides))
    if merged:
        out["with_plugins"] = ",".join(merged)
    return method, out


@dataclass(frozen=True)
class RunKey:
    """Who a run is: (method, setting, order, seed, preset).  ``order`` is what was asked for
    (``1|2|3`` or comma-separated subset names) or, read back from a result file, its name
    (``1|2|3|custom-<slugs>``); :attr:`order_name` is the name either way.

    The leaderboard reads it from result files (:meth:`from_result`) and names a run by
    :attr:`cell` (a leaderboard merges runs of one preset only, so the preset is checked as a
    field that must agree, not as part of the cell); the sweep labels run folders by
    :attr:`label`."""

    method: str
    setting: str = "unseen"
    order: str = "1"
    seed: int = 0
    preset: str | None = "tiny"

    @property
    def order_name(self) -> str:
        from benchmark.splits import order_name

        text = str(self.order)
        if text.startswith("custom-") and "," not in text:     # already a name
            return text
        return order_name(text)

    @property
    def cell(self) -> tuple[str, str, str, int]:
        """(method, setting, order name, seed): two runs with the same cell are one run twice."""
        return (self.method, self.setting, self.order_name, int(self.seed))

    @property
    def label(self) -> str:
        """``method/setting/order<order>/seed<seed>`` (the sweep's run label)."""
        return f"{self.method}/{self.setting}/order{self.order}/seed{self.seed}"

    @classmethod
    def from_result(cls, result: dict, config: dict | None = None) -> "RunKey":
        """The key a finished run's ``result.json`` (and ``config.json``) record."""
        config = config or {}
        order = result["order"]
        order = order.get("name") if isinstance(order, dict) else order
        preset = result.get("preset", config.get("preset"))
        return cls(method=str(result["method"]), setting=str(result["setting"]).lower(),
                   order=str(order), seed=int(result["seed"]),
                   preset=None if preset is None else str(preset))
