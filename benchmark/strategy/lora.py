"""peft helpers shared by every LoRA-based strategy (written once, composed by methods).

Adapters are peft named adapters (``get_peft_model`` for the first, ``add_adapter`` after).
Each adapter also carries its own copy of the motion-token rows of the input embedding and
the lm_head (peft ``trainable_token_indices``); a new adapter can start from a previous
adapter's rows (``copy_tokens_from``) so that the motion vocabulary is not re-initialised.
Parameters of adapter ``name`` are the model parameters whose dotted name contains the
component ``name`` (``lora_A.<name>.weight``, ``trainable_tokens_delta.<name>`` ...).
"""
from __future__ import annotations

import re
import typing
from typing import Iterable

import torch

if typing.TYPE_CHECKING:                 # annotations only: lora is below the configs
    from benchmark.strategy.config import StrategyConfig

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def lora_config(cfg: StrategyConfig, motion_lm, r: int | None = None):
    """A peft ``LoraConfig`` from the strategy config (rank ``r`` overrides ``cfg.lora_r``)."""
    from peft import LoraConfig

    tokens = None
    if cfg.train_motion_tokens:
        ids = list(range(motion_lm.motion_offset, motion_lm.eom_id + 1))
        tokens = {_embedding_name(motion_lm.model): ids, _head_name(motion_lm.model): ids}
    return LoraConfig(r=r or cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), trainable_token_indices=tokens,
                      bias="none", task_type="CAUSAL_LM")


def _embedding_name(model) -> str:
    emb = model.get_input_embeddings()
    for name, mod in model.named_modules():
        if mod is emb or getattr(mod, "base_layer", None) is emb:
            return name.split(".")[-1]
    return "embed_tokens"


def _head_name(model) -> str:
    head = model.get_output_embeddings()
    for name, mod in model.named_modules():
        if mod is head:
            return name.split(".")[-1]
    return "lm_head"


def lora_layers(model, linear_only: bool = False) -> dict[str, torch.nn.Module]:
    """peft LoRA layers of ``model`` by module name (``linear_only``: those wrapping an
    ``nn.Linear``, the ones the expert bank can mix)."""
    from peft.tuners.lora import LoraLayer

    return {n: m for n, m in model.named_modules() if isinstance(m, LoraLayer) and hasattr(m, "lora_A")
            and (not linear_only or isinstance(m.get_base_layer(), torch.nn.Linear))}


def is_peft(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def adapter_names(motion_lm) -> list[str]:
    """Adapters in creation order."""
    return list(motion_lm.adapters)


def add_adapter(motion_lm, name: str, config, copy_tokens_from: str | None = None,
                activate: bool = True) -> None:
    """Add LoRA adapter ``name`` (a peft ``LoraConfig``); wraps the model with peft the first time."""
    from peft import get_peft_model

    if not _NAME.match(name):
        raise ValueError(f"adapter name {name!r} must match {_NAME.pattern}")
    if name in motion_lm.adapters:
        raise ValueError(f"adapter {name!r} already exists")
    if not is_peft(motion_lm.model):
        motion_lm.model = get_peft_model(motion_lm.model, config, adapter_name=name)
    else:
        motion_lm.model.add_adapter(name, config)
    motion_lm.adapters[name] = config.to_dict()
    if copy_tokens_from is not None:
        copy_token_rows(motion_lm, copy_tokens_from, name)
    if activate:
        set_active(motion_lm, name)


def copy_token_rows(motion_lm, src: str, dst: str) -> None:
    """Copy adapter ``src``'s trained motion-token rows into adapter ``dst``."""
    with torch.no_grad():
        for mod in motion_lm.model.modules():
            deltas = getattr(mod, "trainable_tokens_delta", None)
            if deltas is not None and src in deltas and dst in deltas:
                deltas[dst].copy_(deltas[src])


def set_active(motion_lm, names: str | list[str]) -> None:
    """Make ``names`` peft's active adapter(s) and train exactly their parameters."""
    names = [names] if isinstance(names, str) else list(names)
    motion_lm.model.base_model.set_adapter(names if len(names) > 1 else names[0])
    set_trainable(motion_lm, names)


def adapter_parameters(motion_lm, name: str) -> dict[str, torch.nn.Parameter]:
    """Parameters of adapter ``name`` by full dotted name."""
    return {n: p for n, p in motion_lm.model.named_parameters() if name in n.split(".")}


def set_trainable(motion_lm, names: Iterable[str], tokens: bool = True) -> None:
    """``requires_grad`` = True exactly for the parameters of adapters ``names`` (their
    motion-token rows too unless ``tokens=False``); everything else frozen."""
    keep = set(names)
    for n, p in motion_lm.model.named_parameters():
        parts = set(n.split("."))
        mine = bool(parts & keep)
        if "trainable_tokens_delta" in parts and not tokens:
            mine = False
        p.requires_grad_(mine)


def freeze_adapter(motion_lm, name: str) -> None:
    for p in adapter_parameters(motion_lm, name).values():
        p.requires_grad_(False)


def unfreeze_adapter(motion_lm, name: str, tokens: bool = True) -> None:
    for n, p in adapter_parameters(motion_lm, name).items():
        p.requires_grad_(tokens or "trainable_tokens_delta" not in n)


def count_parameters(model) -> dict[str, int]:
    """{"total", "trainable"} parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return {"total": total, "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def adapter_bytes(motion_lm, name: str) -> int:
    """Storage of one adapter (LoRA matrices + its motion-token rows), in bytes."""
    return sum(p.numel() * p.element_size() for p in adapter_parameters(motion_lm, name).values())


def adapter_bytes_split(motion_lm, name: str) -> dict[str, int]:
    """:func:`adapter_bytes` split into ``lora_bytes`` (A, B matrices) and ``token_rows_bytes``
    (the adapter's copy of the motion-token embedding / lm_head rows)."""
    out = {"lora_bytes": 0, "token_rows_bytes": 0}
    for n, p in adapter_parameters(motion_lm, name).items():
        out["token_rows_bytes" if "trainable_tokens" in n else "lora_bytes"] += p.numel() * p.element_size()
    return out


def merge_adapter(motion_lm, name: str) -> None:
    """Fold adapter ``name`` into the base weights (W += scaling * B A; token rows replaced)
    and delete it; the other adapters keep working."""
    from peft.tuners.lora import LoraLayer

    with torch.no_grad():
        for mod in motion_lm.model.modules():
            if isinstance(mod, LoraLayer) and name in mod.lora_A:
                base = mod.get_base_layer().weight
                base.data += mod.get_delta_weight(name).to(base.dtype)
            deltas = getattr(mod, "trainable_tokens_delta", None)
            if deltas is not None and name in deltas:
                idx = torch.tensor(mod.token_indices[name], device=deltas[name].device)
                mod.get_base_layer().weight.data.index_copy_(0, idx, deltas[name].data)
                mod.trainable_tokens_original[name] = deltas[name].detach().clone()
    others = [a for a in motion_lm.adapters if a != name]
    if others:
        motion_lm.model.delete_adapter(name)
        motion_lm.adapters.pop(name)
    else:   # peft cannot delete the last adapter: unwrap to the merged base model
        motion_lm.model = motion_lm.model.unload()
        motion_lm.adapters.clear()


def adapter_state(motion_lm) -> dict:
    """Everything needed to rebuild the adapters: configs (creation order), active adapter(s),
    and the tensors of every adapter parameter."""
    if not is_peft(motion_lm.model):
        return {"configs": {}, "active": [], "tensors": {}}
    tensors = {n: p.detach().cpu().clone() for a in motion_lm.adapters
               for n, p in adapter_parameters(motion_lm, a).items()}
    active = motion_lm.model.base_model.active_adapters
    trainable = [n for n, p in motion_lm.model.named_parameters() if p.requires_grad]
    return {"configs": dict(motion_lm.adapters), "active": list(active), "tensors": tensors,
            "trainable": trainable}


def load_adapter_state(motion_lm, state: dict) -> None:
    """Recreate missing adapters from ``state['configs']`` and copy the saved tensors in."""
    from peft import LoraConfig

    for name, cfg in state["configs"].items():
        if name not in motion_lm.adapters:
            cfg = {k: v for k, v in cfg.items() if k in LoraConfig.__dataclass_fields__}
            add_adapter(motion_lm, name, LoraConfig(**cfg), activate=False)
    if not state["configs"]:
        return
    params = dict(motion_lm.model.named_parameters())
    missing = sorted(set(state["tensors"]) - set(params))
    if missing:
        raise KeyError(f"checkpoint parameter {missing[0]!r} is not in the model")
    with torch.no_grad():
        for n, t in state["tensors"].items():
            params[n].copy_(t.to(params[n].device, params[n].dtype))
    active = state["active"]
    motion_lm.model.base_model.set_adapter(active if len(active) > 1 else active[0])
    keep = set(state.get("trainable", []))
    for n, p in motion_lm.model.named_parameters():
        p.requires_grad_(n in keep)
