"""How a strategy's state becomes a checkpoint and back (what ``MotionLMStrategy.state_dict`` /
``load_state_dict`` use).

The strategy's checkpoint is one table of named parts (``MotionLMStrategy.state_parts``): the
LoRA adapters, ``method_modules``, the expert bank, the values a method declares with
``keep()`` (part ``kept``), the CL plugins' own ``state_dict``s, the optimiser state, the
counters and the loss history.  This module holds the conversions the parts share: CPU copies,
device moves, one declared value, modules whose ``ParameterList``s grow.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from benchmark.strategy import lora
from benchmark.strategy.experts import ExpertBank


def to_cpu(value):
    """A detached CPU copy of ``value`` (tensors inside dicts, lists and tuples too)."""
    if torch.is_tensor(value):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return copy.deepcopy(value)


def to_device(value, device):
    """``value`` with every tensor inside moved to ``device``."""
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def save_value(value) -> dict:
    """One declared value -> a checkpoint entry (generators by state, objects with a
    ``state_dict`` by theirs, anything else as a CPU copy)."""
    if isinstance(value, torch.Generator):
        return {"kind": "torch_generator", "state": value.get_state()}
    if isinstance(value, np.random.Generator):
        return {"kind": "numpy_generator", "state": copy.deepcopy(value.bit_generator.state)}
    if hasattr(value, "state_dict") and hasattr(value, "load_state_dict"):
        return {"kind": "object", "state": to_cpu(value.state_dict())}
    return {"kind": "value", "state": to_cpu(value)}


def load_value(current, entry: dict, device):
    """The value to set for a declared attribute from its checkpoint ``entry``: generators and
    objects are restored in place (``current`` comes back), plain values are moved to
    ``device``."""
    kind, saved = entry["kind"], entry["state"]
    if kind == "torch_generator":
        current.set_state(saved)
    elif kind == "numpy_generator":
        current.bit_generator.state = saved
    elif kind == "object":
        current.load_state_dict(saved)
    else:
        return to_device(saved, device)
    return current


def save_modules(root: torch.nn.Module) -> dict:
    """``root``'s state and which of its parameters train."""
    return {"state": to_cpu(root.state_dict()),
            "requires_grad": {n: p.requires_grad for n, p in root.named_parameters()}}


def load_modules(root: torch.nn.Module, saved: dict) -> None:
    """Inverse of :func:`save_modules` (``ParameterList``s grown back to the saved length)."""
    grow_parameter_lists(root, saved["state"])
    root.load_state_dict(saved["state"])
    for n, p in root.named_parameters():
        p.requires_grad_(saved["requires_grad"].get(n, p.requires_grad))


def grow_parameter_lists(root: torch.nn.Module, state: dict) -> None:
    """Append parameters to every ``ParameterList`` of ``root`` that holds fewer entries than
    ``state`` (a saved ``state_dict``), so that ``load_state_dict`` fits (keys, prompts...)."""
    own = set(root.state_dict())
    for key in state:
        if key in own:
            continue
        *path, idx = key.split(".")
        if not idx.isdigit():
            continue
        try:
            parent = root.get_submodule(".".join(path)) if path else root
        except AttributeError:
            continue
        if isinstance(parent, torch.nn.ParameterList):
            prefix = ".".join(path)
            while len(parent) <= int(idx):
                parent.append(torch.nn.Parameter(torch.zeros_like(state[f"{prefix}.{len(parent)}"])))


class CheckpointMixin:
    """``MotionLMStrategy``'s checkpoint: one table of named parts (:meth:`state_parts`) saved by
    :meth:`state_dict` and loaded in order by :meth:`load_state_dict` (uses the strategy's
    ``motion_lm``, ``method_modules``, ``bank``, ``_kept``, ``cl_plugins``, ``optimizer``,
    counters and ``history``)."""

    def state_parts(self) -> dict[str, tuple]:
        """The one table of what a checkpoint holds: part name -> (save(), load(saved)), loaded
        in this order.  A method adds to part ``kept`` with :meth:`keep`, never a part of its
        own; a CL plugin's ``state_dict`` goes into part ``plugins`` under its name."""
        return {
            "adapters": (lambda: lora.adapter_state(self.motion_lm),
                         lambda saved: lora.load_adapter_state(self.motion_lm, saved)),
            "method_modules": (lambda: save_modules(self.method_modules),
                               lambda saved: load_modules(self.method_modules, saved)),
            "bank": (self._save_bank, self._load_bank),
            "kept": (lambda: {n: save_value(getattr(self, n)) for n in self._kept},
                     self._load_kept),
            "plugins": (lambda: {p.name: to_cpu(p.state_dict()) for p in self.cl_plugins},
                        self._load_plugins),
            "optimizer": (self._named_optimizer_state,
                          lambda saved: setattr(self, "_pending_opt", saved)),
            "exp_counter": (lambda: self.exp_counter,
                            lambda saved: setattr(self, "exp_counter", int(saved))),
            "history": (lambda: list(self.history),
                        lambda saved: setattr(self, "history", list(saved))),
        }

    def state_dict(self) -> dict[str, Any]:
        """The strategy's checkpoint: every part of :meth:`state_parts` (CPU copies)."""
        return {name: save() for name, (save, _) in self.state_parts().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict` on a freshly built strategy of the same method and
        config (checkpoints written before this method existed have the same parts)."""
        parts = self.state_parts()
        missing = [n for n in parts if n not in state]
        if missing:
            raise KeyError(f"{type(self).__name__}: the checkpoint lacks part(s) {missing}; "
                           "it was not written by MotionLMStrategy.state_dict")
        for name, (_, load) in parts.items():
            load(state[name])
        self.model.to(self.device)
        self.method_modules.to(self.device)

    def _save_bank(self) -> dict | None:
        if self.bank is None:
            return None
        w = self.bank.fixed_weights
        return {"experts": list(self.bank.experts), "weights": None if w is None else to_cpu(w)}

    def _load_bank(self, saved: dict | None) -> None:
        if saved is None:
            return
        if self.bank is not None:
            self.bank.detach()
        self.bank = ExpertBank(self.model, saved["experts"]).attach()
        if saved["weights"] is not None:
            self.bank.set_weights(saved["weights"])

    def _load_kept(self, saved: dict) -> None:
        for name, entry in saved.items():
            if name not in self._kept:
                raise KeyError(f"{type(self).__name__}: the checkpoint keeps {name!r}, which this "
                               "strategy does not declare with keep()")
            device = self.device if self._kept[name] else "cpu"
            setattr(self, name, load_value(getattr(self, name, None), entry, device))

    def _load_plugins(self, saved: dict) -> None:
        plugins = {p.name: p for p in self.cl_plugins}
        if set(plugins) != set(saved):
            raise KeyError(f"checkpoint plugins {sorted(saved)} != {sorted(plugins)}")
        for name, st in saved.items():
            plugins[name].load_state_dict(to_device(st, self.device))

    def _named_optimizer_state(self) -> dict[str, dict]:
        out = {}
        for name, p in zip(self._opt_names, self.optimizer.param_groups[0]["params"]):
            st = self.optimizer.state.get(p)
            if st:
                out[name] = to_cpu(dict(st))
        return out
