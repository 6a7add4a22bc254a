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

import numpy as np
import torch


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
