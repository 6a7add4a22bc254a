"""Typed strategy configs (peft-style dataclasses, validated on creation).

Every strategy's config subclasses :class:`StrategyConfig`, which holds what all methods
share (optimisation, LoRA shape, which motion-token rows train).  ``from_dict`` refuses
unknown keys naming the valid ones; ``coerce`` turns ``--set key=value`` strings into the
field's type.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from benchmark.strategy.fields import coerce_field


TOKEN_ROWS = ("train", "freeze_after_first")
LR_SCHEDULES = ("constant", "linear", "cosine")
# speed options left out of to_dict (and so of the config hash) at these defaults
SPEED_DEFAULTS = {"loss_logits_only": False, "length_bucketing": False, "compile": False,
                  "merge_for_generation": False}


@dataclass
class StrategyConfig:
    """Shared settings: AdamW, epochs/batch per experience, LoRA shape (r=8, alpha=16 on the
    LLaMA attention projections, the usual LoRA setting); run presets override lr/epochs."""

    lr: float = field(default=2e-4, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    epochs: int = field(default=1, metadata={"help": "epochs per experience"})
    batch_size: int = field(default=8, metadata={"help": "training mini-batch size"})
    max_steps: int = field(default=0, metadata={"help": "cap on optimiser steps per experience "
                                                          "(0 = no cap)"})
    grad_clip: float = field(default=1.0, metadata={"help": "max grad norm (0 = off)"})
    lr_schedule: str = field(default="constant", metadata={
        "help": "protocol rule, the same for every method: the learning rate within each experience, "
                "'constant', or 'linear' / 'cosine' decay from lr to 0 over the experience's planned "
                "steps (min(epochs x batches, max_steps)); restarts at every experience"})
    reset_optimizer: bool = field(default=True, metadata={
        "help": "protocol rule, the same for every method: fresh AdamW state at every experience "
                "(as the reference codebases, which start a new trainer per task); false carries "
                "the state over by parameter name"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA alpha (scaling = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    target_modules: tuple[str, ...] = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj"),
        metadata={"help": "module names that get LoRA (LLaMA attention projections)"})
    train_motion_tokens: bool = field(default=True, metadata={
        "help": "train the embedding + lm_head rows of <motion_k>/<som>/<eom> "
                "(peft trainable_token_indices, one copy per adapter)"})
    token_rows: str = field(default="train", metadata={
        "help": "protocol rule for the motion-token rows: 'train' (the copy in use trains on every "
                "scenario) or 'freeze_after_first' (trained on the first scenario only, frozen "
                "after: nothing shared changes later); see docs/CONTRACTS.md 'Protocol rules'"})
    with_plugins: tuple[str, ...] = field(default=(), metadata={
        "help": "composable CL plugins added to the method, in order: the registered ones (built "
                "in: ewc, replay, lwf; `--with ewc,replay`); their options as "
                "--set <plugin>.<option>=VALUE"})
    plugin_options: dict = field(default_factory=dict, metadata={
        "help": "options of the plugins: {plugin: {option: value}} (set with --set replay.mem_size=N)"})
    # speed levers (docs/runner.md "Where the time goes"): off by default, and a config that
    # leaves them off keeps the hash it had before they existed (to_dict drops them)
    loss_logits_only: bool = field(default=False, metadata={
        "help": "training: the LM head and the cross-entropy only at the positions whose next token "
                "carries a label (the same mean loss up to float rounding; the output's logits are "
                "then (1, N, V) for those N positions, so methods reading full logits refuse it)"})
    length_bucketing: bool = field(default=False, metadata={
        "help": "training: batches of similar lengths (each shuffled pool of 50 batches sorted by "
                "token length, batch order shuffled; every item once per epoch): less padding, "
                "other batch compositions"})
    compile: bool = field(default=False, metadata={
        "help": "training: torch.compile each decoder layer in place (eager again if it fails; "
                "not with an expert bank)"})
    merge_for_generation: bool = field(default=False, metadata={
        "help": "generation: the active LoRA adapters folded into copies of the base weights while "
                "sampling (the same model up to float rounding; methods without an expert bank)"})

    def __post_init__(self):
        if isinstance(self.target_modules, (list, str)):
            self.target_modules = tuple([self.target_modules] if isinstance(self.target_modules, str)
                                        else self.target_modules)
        checks = [(self.lr > 0, "lr must be > 0"), (self.weight_decay >= 0, "weight_decay must be >= 0"),
                  (self.epochs >= 1, "epochs must be >= 1"), (self.batch_size >= 1, "batch_size must be >= 1"),
                  (self.max_steps >= 0, "max_steps must be >= 0"), (self.grad_clip >= 0, "grad_clip must be >= 0"),
                  (self.lora_r >= 1, "lora_r must be >= 1"), (self.lora_alpha > 0, "lora_alpha must be > 0"),
                  (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
                  (len(self.target_modules) > 0, "target_modules must not be empty"),
                  (self.token_rows in TOKEN_ROWS, f"token_rows must be one of {TOKEN_ROWS}"),
                  (self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {LR_SCHEDULES}")]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"{type(self).__name__}: {msg}")
        self._check_plugins()

    def _check_plugins(self) -> None:
        # one direction: config -> plugins (plugins.py never imports this module); imported
        # here, not at the top, so that reading a config does not load avalanche
        from benchmark.strategy.plugins import plugin_options_dict

        if isinstance(self.with_plugins, (list, str)):
            self.with_plugins = tuple(s.strip() for s in (self.with_plugins.split(",")
                                      if isinstance(self.with_plugins, str) else self.with_plugins) if s)
        if len(set(self.with_plugins)) != len(self.with_plugins):
            raise ValueError(f"{type(self).__name__}: with_plugins lists a plugin twice")
        stray = sorted(set(self.plugin_options) - set(self.with_plugins))
        if stray:
            raise ValueError(f"{type(self).__name__}: options for plugin(s) {', '.join(stray)} "
                             "that are not in with_plugins")
        self.plugin_options = {n: plugin_options_dict(n, self.plugin_options.get(n))
                               for n in self.with_plugins}

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "StrategyConfig":
        """Build from a dict; unknown keys -> ValueError listing the valid ones; strings are
        coerced to the field types (so ``--set`` values work)."""
        values = dict(values or {})
        if "with" in values:                          # --with ewc,replay / --set with=...
            values["with_plugins"] = values.pop("with")
        opts: dict = {}
        for key in [k for k in values if "." in k]:   # --set replay.mem_size=100
            plugin, option = key.split(".", 1)
            opts.setdefault(plugin, {})[option] = values.pop(key)
        if opts:
            values["plugin_options"] = {**opts, **dict(values.get("plugin_options") or {})}
        valid = cls.field_names()
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(f"{cls.__name__} has no field {', '.join(map(repr, unknown))}; "
                             f"valid: {', '.join(valid)}")
        return cls(**{k: cls.coerce(k, v) for k, v in values.items()})

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values; ``with_plugins`` / ``plugin_options`` only when a plugin is
        used (runs without plugins keep the config hash they had before plugins existed)."""
        d = dataclasses.asdict(self)
        if not self.with_plugins:
            d.pop("with_plugins"), d.pop("plugin_options")
        for name, default in SPEED_DEFAULTS.items():
            if d.get(name) == default:
                d.pop(name)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def coerce(cls, name: str, value: Any) -> Any:
        """Convert ``value`` (often a string from the command line) to field ``name``'s type."""
        return coerce_field(cls, name, value)

    @classmethod
    def help(cls) -> list[tuple[str, str, Any]]:
        """(name, help, default) per field, for ``l2emg methods``."""
        return [(f.name, f.metadata.get("help", ""),
                 f.default if f.default is not dataclasses.MISSING else f.default_factory())
                for f in dataclasses.fields(cls)]
