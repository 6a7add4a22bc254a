"""Continual-learning remedies as Avalanche plugins that compose with any strategy.

``l2emg run --method es_moe --with ewc,replay`` (or ``--set with_plugins=ewc,replay``) adds them to
ES-MoE; their options are ``--set replay.mem_size=100``-style keys (see :data:`PLUGINS`).  Both go
into the method config (``with_plugins`` / ``plugin_options``, part of the config hash; absent
when no plugin is used, so runs without plugins keep their hash).  The baselines EWC, Replay and
LwF-LoRA are SeqLoRA + one of these plugins.

A :class:`CLPlugin` is an Avalanche ``SupervisedPlugin`` (its ``before/after_training_exp``
callbacks run as usual) plus three protocol hooks the strategy base calls:

* ``loss_terms(strategy, batch, outputs) -> dict[str, Tensor]``: the same loss route as the
  method's own :meth:`MotionLMStrategy.loss_terms` (named terms, summed and logged by the base);
* ``extend_items(strategy, items) -> items``: the stream items of one training mini-batch,
  before collation (replay adds memory items here);
* ``state_dict()`` / ``load_state_dict(state)``: part ``plugins`` of the strategy's
  ``state_dict()`` (checkpointed with the run under ``name``).

Plugins are an open registry, like strategies: ``@register_plugin("name", options=MyOptions)``
on a :class:`CLPlugin` subclass, in any module that strategy discovery imports (the project's
folders, the ``l2emg.strategies`` entry points, a ``--strategy-file FILE.py``).  The options
dataclass is the one declaration of a plugin's options: ``--set name.option=VALUE`` is checked
and typed against it, and the plugin reads them as ``self.options``.  This module never imports
:mod:`benchmark.strategy.config` (the config imports it: one direction, tests/test_layering.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import torch
from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader

from benchmark.strategy.distill import lm_distillation
from benchmark.strategy.fields import coerce_field
from benchmark.strategy.regularizers import EWC
from benchmark.strategy.replay import ReservoirBuffer


class CLPlugin(SupervisedPlugin):
    """Base of the composable plugins (see the module docstring).  Built from an instance of
    its options dataclass or from that dataclass's fields as keywords
    (``ReplayPlugin(mem_size=16)``): ``self.options`` holds them, ``self.seed`` the run's seed."""

    name: ClassVar[str] = ""                      # set by @register_plugin
    options_class: ClassVar[type | None] = None   # its options dataclass (None: no options)

    def __init__(self, options: Any = None, *, seed: int = 0, **values):
        super().__init__()
        cls = type(self).options_class
        if options is not None and values:
            raise TypeError(f"{type(self).__name__}: pass an options object or keywords, not both")
        if options is None:
            if cls is None and values:
                raise TypeError(f"{type(self).__name__} takes no options (got {sorted(values)})")
            options = None if cls is None else cls(**values)
        elif cls is not None and not isinstance(options, cls):
            raise TypeError(f"{type(self).__name__}: options must be a {cls.__name__}")
        self.options = options
        self.seed = int(seed)

    @classmethod
    def from_config(cls, config, seed: int = 0) -> "CLPlugin":
        """The plugin with its options read from the same-named fields of a strategy config
        (a baseline whose config subclasses the options dataclass: Replay, EWC, LwF-LoRA)."""
        opts = cls.options_class
        values = {} if opts is None else {f.name: getattr(config, f.name)
                                          for f in dataclasses.fields(opts)}
        return cls(**values, seed=seed)

    def loss_terms(self, strategy, batch: dict, outputs) -> dict[str, torch.Tensor]:
        return {}

    def extend_items(self, strategy, items: list[dict]) -> list[dict]:
        return items

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


# ---------------------------------------------------------------------- registry
@dataclass(frozen=True)
class PluginEntry:
    name: str
    cls: type
    options: type | None
    module: str

    @property
    def doc(self) -> str:
        """The docstring's opening phrase (up to its first ':' or '.')."""
        text = " ".join((self.cls.__doc__ or "").split())
        return text.split(": ")[0].split(". ")[0]


PLUGINS: dict[str, PluginEntry] = {}          # name -> entry; filled by @register_plugin


def register_plugin(name: str, options: type | None = None):
    """Class decorator: register a :class:`CLPlugin` subclass under ``name`` (what ``--with`` and
    the label ``method+name`` take) with ``options``, its options dataclass (or None)."""
    if not name or not name.isidentifier():
        raise ValueError(f"plugin name {name!r} must be a Python identifier (it prefixes "
                         "--set NAME.option=VALUE and joins method labels as METHOD+NAME)")
    if options is not None and not dataclasses.is_dataclass(options):
        raise TypeError(f"options of plugin {name!r} must be a dataclass")

    def wrap(cls):
        if not (isinstance(cls, type) and issubclass(cls, CLPlugin)):
            raise TypeError(f"plugin {name!r} must subclass CLPlugin")
        old = PLUGINS.get(name)
        if old is not None and (old.cls.__module__, old.cls.__qualname__) != \
                (cls.__module__, cls.__qualname__):
            raise ValueError(f"plugin name {name!r} is already registered by {old.module}")
        cls.name, cls.options_class = name, options
        PLUGINS[name] = PluginEntry(name, cls, options, cls.__module__)
        return cls

    return wrap


def available_plugins() -> list[str]:
    return sorted(PLUGINS)


def plugin_options(name: str, values: dict | None = None):
    """The typed options of plugin ``name`` (strings coerced; unknown keys refused); None for a
    plugin without options."""
    if name not in PLUGINS:
        raise ValueError(f"unknown plugin {name!r}; choose from {', '.join(available_plugins())} "
                         "(a plugin of your own: @register_plugin in a --strategy-file FILE.py)")
    cls = PLUGINS[name].options
    values = dict(values or {})
    valid = [f.name for f in dataclasses.fields(cls)] if cls is not None else []
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"plugin {name!r} has no option {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(valid) or '(none)'}")
    return None if cls is None else cls(**{k: coerce_field(cls, k, v) for k, v in values.items()})


def plugin_options_dict(name: str, values: dict | None = None) -> dict:
    """:func:`plugin_options` as a plain dict (what the method config records)."""
    opts = plugin_options(name, values)
    return {} if opts is None else dataclasses.asdict(opts)


def make_plugins(names: Sequence[str], options: dict | None = None, seed: int = 0) -> list[CLPlugin]:
    """Plugins ``names`` (in order) with their ``options`` ({name: {key: value}})."""
    return [PLUGINS[name].cls(plugin_options(name, (options or {}).get(name)), seed=seed)
            for name in names]


# ---------------------------------------------------------------------- replay
_KEEP = ("id", "features", "motion_ids", "text", "emotion", "scenario", "subset")


@dataclass
class ReplayOptions:
    mem_size: int = field(default=200, metadata={"help": "reservoir buffer capacity (items)"})
    replay_batch_size: int = field(default=8, metadata={
        "help": "buffer items added to every training mini-batch"})

    def __post_init__(self):
        if self.mem_size < 0 or self.replay_batch_size < 0:
            raise ValueError("replay: mem_size and replay_batch_size must be >= 0")


@register_plugin("replay", options=ReplayOptions)
class ReplayPlugin(CLPlugin):
    """Reservoir replay: after each experience its items are offered to the buffer; every
    training mini-batch is extended with ``replay_batch_size`` buffer items (one LM loss)."""

    def __init__(self, options: ReplayOptions | None = None, *, seed: int = 0, **values):
        super().__init__(options, seed=seed, **values)
        self.replay_batch_size = int(self.options.replay_batch_size)
        self.buffer = ReservoirBuffer(self.options.mem_size, seed=seed)

    def extend_items(self, strategy, items):
        return list(items) + self.buffer.sample(self.replay_batch_size)

    def after_training_exp(self, strategy, **kwargs):
        data = strategy.experience.dataset
        self.buffer.extend({k: v for k, v in data[i].items() if k in _KEEP} for i in range(len(data)))

    def state_dict(self):
        return {"buffer": self.buffer.state_dict()}

    def load_state_dict(self, state):
        self.buffer.load_state_dict(state["buffer"])


# ---------------------------------------------------------------------- EWC
@dataclass
class EWCOptions:
    ewc_lambda: float = field(default=100.0, metadata={"help": "weight lambda of the EWC penalty"})
    mode: str = field(default="separate", metadata={"help": "separate | online"})
    gamma: float = field(default=1.0, metadata={"help": "online mode: decay of the old Fisher"})
    fisher_samples: int = field(default=256, metadata={
        "help": "training samples (one gradient each) for the empirical Fisher (0 = all)"})

    def __post_init__(self):
        if self.fisher_samples < 0:
            raise ValueError("ewc: fisher_samples must be >= 0")
        EWC(self.ewc_lambda, self.mode, self.gamma)        # validates lambda, mode, gamma


@register_plugin("ewc", options=EWCOptions)
class EWCPlugin(CLPlugin):
    """Diagonal empirical-Fisher EWC over the strategy's trainable parameters: after each
    experience, per-sample squared gradients of the method's LM loss (eval mode, at most
    ``fisher_samples``) and the current values are stored; later the quadratic penalty is a
    loss term ``ewc``."""

    def __init__(self, options: EWCOptions | None = None, *, seed: int = 0, **values):
        super().__init__(options, seed=seed, **values)
        o = self.options
        self.ewc = EWC(o.ewc_lambda, o.mode, o.gamma)
        self.fisher_samples = int(o.fisher_samples)

    def loss_terms(self, strategy, batch, outputs):
        return {"ewc": self.ewc.penalty(strategy.trainable_named_parameters())}

    def after_training_exp(self, strategy, **kwargs):
        loader = DataLoader(strategy.experience.dataset, batch_size=1, shuffle=False,  # per sample
                            collate_fn=strategy.collate_items, num_workers=0)
        named = strategy.trainable_named_parameters()
        with strategy.eval_mode():
            fisher = EWC.fisher(named, strategy.batch_loss, loader, self.fisher_samples)
        self.ewc.consolidate(named, fisher)

    def state_dict(self):
        return {"ewc": self.ewc.state_dict()}

    def load_state_dict(self, state):
        self.ewc.load_state_dict(state["ewc"])


# ---------------------------------------------------------------------- LwF
@dataclass
class LwFOptions:
    alpha: float = field(default=1.0, metadata={"help": "weight of the distillation term"})
    temperature: float = field(default=2.0, metadata={"help": "softmax temperature T"})
    distill_full_vocab: bool = field(default=False, metadata={
        "help": "distil the full-vocabulary distribution (default: motion tokens + <eom> only)"})

    def __post_init__(self):
        if self.alpha < 0 or self.temperature <= 0:
            raise ValueError("lwf: need alpha >= 0 and temperature > 0")


class _Forward(torch.nn.Module):
    """The strategy's forward as a module over its LM and method modules (for functional_call)."""

    def __init__(self, strategy):
        super().__init__()
        self.model = strategy.model
        self.method = strategy.method_modules
        self._strategy = [strategy]

    def forward(self, batch):
        s = self._strategy[0]
        old = s.mbatch
        s.mbatch = batch
        try:
            return s.forward()
        finally:
            s.mbatch = old


@register_plugin("lwf", options=LwFOptions)
class LwFPlugin(CLPlugin):
    """Learning without Forgetting: before every experience after the first, the trainable
    parameters are copied as the teacher; the loss term ``distill`` is
    ``alpha * T^2 * KL(teacher || student)`` on the target positions (motion tokens + <eom>
    unless ``distill_full_vocab``), the teacher's logits from the method's own forward pass with
    the teacher's tensors substituted (``torch.func.functional_call``, eval mode, no grad)."""

    def __init__(self, options: LwFOptions | None = None, *, seed: int = 0, **values):
        super().__init__(options, seed=seed, **values)
        o = self.options
        self.alpha, self.temperature = float(o.alpha), float(o.temperature)
        self.full_vocab = bool(o.distill_full_vocab)
        self.teacher: dict[str, torch.Tensor] | None = None   # trainable parameter name -> tensor

    def before_training_exp(self, strategy, **kwargs):
        if strategy.exp_counter > 0:
            self.teacher = {n: p.detach().clone() for n, p in strategy.trainable_named_parameters()}

    @torch.no_grad()
    def teacher_logits(self, strategy, batch: dict) -> torch.Tensor:
        """(B, L, V) logits of the previous model on ``batch`` (the student is left untouched)."""
        # trainable_named_parameters() names: the LM's own, or "method.<n>" for method modules
        params = {(n if n.startswith("method.") else "model." + n): t for n, t in self.teacher.items()}
        with strategy.eval_mode():
            out = torch.func.functional_call(_Forward(strategy), params, (batch,), strict=False)
        return out.logits

    def loss_terms(self, strategy, batch, outputs):
        if self.teacher is None:
            return {}
        m = strategy.motion_lm
        vocab = None if self.full_vocab else torch.cat([m.motion_token_ids, torch.tensor([m.eom_id])])
        kl = lm_distillation(outputs.logits, self.teacher_logits(strategy, batch), batch["labels"],
                             self.temperature, vocab)
        return {"distill": self.alpha * kl}

    def state_dict(self):
        t = self.teacher
        return {"teacher": None if t is None else {n: v.detach().cpu().clone() for n, v in t.items()}}

    def load_state_dict(self, state):
        self.teacher = state["teacher"]          # moved to the device by the strategy
