"""``MotionLMStrategy``: the Avalanche ``SupervisedTemplate`` every L2-EMG method subclasses.

Training is ``strategy.train(experience)`` over ``scenario.train_stream``; experience items are
the stream's ``MotionItem`` dicts whose ``features`` hold motion-token codes (the runner builds
the scenario with ``payload = motion tokenizer codes``).  What the template does for the LM:

* ``collate``: items -> ``MotionLM.build_batch`` (input_ids, attention_mask, labels) + emotion,
  scenario, subset (int64) and texts; the loader is a seeded torch ``DataLoader`` (resumable);
* ``forward``: the HF model with labels -> its output (``loss`` = next-token LM loss); a method
  that computes more in its forward pass puts it into the output (``out["name"] = tensor``);
* ``criterion``: LM loss + the sum of the loss terms (the one loss route: the method's
  :meth:`loss_terms`, then every CL plugin's ``loss_terms``), each term logged per epoch in
  ``history`` (train_log.csv) under its name, with ``lm_loss`` and their sum ``extra_loss``;
  the same rows go through the Avalanche ``evaluator`` (:mod:`benchmark.strategy.curves`) to
  its loggers (``loggers=[...]``: TensorBoard, W&B);
* ``make_optimizer``: AdamW (torch's fused kernel on CPU/CUDA) over the parameters that
  ``requires_grad`` after :meth:`before_experience` (+ ``method_modules``), state reset or
  carried by parameter name, and the experience's learning-rate schedule (``lr_schedule``:
  constant, or a linear / cosine decay to 0 over :meth:`planned_steps`, a torch ``LambdaLR``);
* generation (:class:`~benchmark.strategy.generation.GenerationMixin`): ``generate(texts)`` in
  chunks, each routed as :meth:`route` says (a :class:`Route`);
* checkpoints (:class:`~benchmark.strategy.state.CheckpointMixin`: :meth:`state_dict` /
  :meth:`load_state_dict`, one table of parts, :meth:`state_parts`): adapters,
  ``method_modules`` (grown back to the saved number of entries of any ``ParameterList``;
  ``requires_grad`` as saved), the expert bank (experts + fixed weights), every value declared
  with :meth:`keep`, the CL plugins' states, optimiser, counters and history.  A method declares its state with :meth:`keep` and writes no ``state_dict``.

Methods override small hooks: :meth:`before_experience` / :meth:`after_experience` (add, freeze,
merge adapters...), :meth:`loss_terms`, :meth:`route` (routing at generation),
:meth:`memory_per_scenario`, and declare the state they carry across experiences with
:meth:`keep`.  Read-only training facts: :attr:`exp_counter`, :attr:`steps_in_experience`,
:meth:`planned_steps`.  Helpers: :meth:`eval_mode`, :meth:`seeded`.  Avalanche plugins
(``plugins=[...]``; the CL plugins of :mod:`benchmark.strategy.plugins` by ``--with``) compose
with any method.  Evaluation stays outside.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from avalanche.training.templates import SupervisedTemplate
from torch.utils.data import DataLoader

from benchmark import seed as _seed
from benchmark.strategy import lora, speed
from benchmark.strategy.state import CheckpointMixin
from benchmark.strategy.config import StrategyConfig
from benchmark.strategy.curves import evaluation_plugin
from benchmark.strategy.experts import ExpertBank
from benchmark.strategy.generation import GenerationMixin, Route, RoutedModel  # noqa: F401 (base re-exports them)
from benchmark.strategy.plugins import CLPlugin, make_plugins


def _fused_ok(params: Sequence[torch.Tensor]) -> bool:
    """True when torch's fused AdamW kernel takes these parameters (floating point, all on CPU
    or all on CUDA): one kernel for every tensor instead of a Python loop over them, the same
    update for every method (a method with many small tensors is not charged for their count)."""
    devices = {p.device.type for p in params}
    return len(devices) == 1 and devices <= {"cpu", "cuda"} and all(
        p.is_floating_point() for p in params)


def lr_factor(schedule: str, step: int, total: int) -> float:
    """The learning-rate multiplier of optimiser step ``step`` (0-based) of ``total``:
    1 (``constant``), ``1 - step/total`` (``linear``) or ``(1 + cos(pi step/total)) / 2``
    (``cosine``); the first step uses the full rate and the decay reaches 0 at ``total``."""
    if schedule == "constant":
        return 1.0
    t = min(step / max(total, 1), 1.0)
    if schedule == "linear":
        return 1.0 - t
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    raise ValueError(f"unknown lr_schedule {schedule!r} (constant, linear, cosine)")


class MotionLMStrategy(GenerationMixin, CheckpointMixin, SupervisedTemplate):
    """Base of every L2-EMG strategy (one class + one config dataclass per method).

    Method facts: what the leaderboard and the harness know of a method, stated by its own
    class (read through :func:`benchmark.strategy.registry.method_info`, which takes each
    fact from the registered class's own body, never from a parent: a SeqLoRA subclass is
    not the lower bound by inheritance):

    * ``display_name``: its name in tables and figures ("" = the registered name);
    * ``latex_name``: its LaTeX table name ("" = ``display_name``, escaped);
    * ``paper_row``: its row in the paper's Table 2 (1-based), None when not in the paper;
    * ``role``: ``"method"``, ``"upper_bound"`` (the joint multi-task model) or
      ``"lower_bound"`` (plain sequential fine-tuning).
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = StrategyConfig
    display_name: ClassVar[str] = ""              # method facts (see the class docstring)
    latex_name: ClassVar[str] = ""
    paper_row: ClassVar[int | None] = None
    role: ClassVar[str] = "method"
    joint: ClassVar[bool] = False                 # True: the runner trains once on all data
    output_hidden_states: ClassVar[bool] = False  # forward() asks the LM for hidden states

    def __init__(self, *, motion_lm, config: StrategyConfig | None = None,
                 device: str | torch.device = "cpu", plugins: Sequence | None = None,
                 seed: int = 0, progress: bool = False, label_spaces: dict | None = None,
                 loggers: Sequence = ()):
        self._kept: dict[str, bool] = {}              # declared state: name -> on the device
        # the corpus's label spaces ({"emotions": (...), "scenarios": (...)}), passed by the
        # runner so a method can size its heads from the data (empty when built by hand)
        self.label_spaces: dict = dict(label_spaces or {})
        self.motion_lm = motion_lm
        self.config = config if config is not None else self.config_class()
        self.seed = int(seed)
        self.progress = progress
        self.method_modules = torch.nn.ModuleDict()   # gates, keys ... (trained + checkpointed)
        self.bank: ExpertBank | None = None           # LoRA experts mixed by a gate, if any
        self.history: list[dict] = []                 # per epoch: steps, lm_loss, extra_loss, terms
        self.exp_counter = 0                          # experiences finished
        self._pending_opt: dict | None = None
        self._opt_names: list[str] = []
        self.lr_scheduler = None            # made with each experience's optimiser
        self._bar = None
        self._loss_head: speed.LossPositionsHead | None = None     # loss_logits_only, per experience
        placeholder = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=self.config.lr)
        plugins = list(plugins or []) + make_plugins(self.config.with_plugins,   # --with ewc,replay
                                                     self.config.plugin_options, self.seed)
        super().__init__(model=motion_lm.model, optimizer=placeholder,
                         train_mb_size=self.config.batch_size, train_epochs=self.config.epochs,
                         eval_mb_size=self.config.batch_size, device=device,
                         plugins=plugins, evaluator=evaluation_plugin(loggers),  # curves
                         eval_every=-1)
        self._check_plugin_names()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "extra_loss" in vars(cls):
            raise TypeError(f"{cls.__module__}.{cls.__qualname__} defines extra_loss(), which was "
                            "removed: return the term from loss_terms(batch, outputs) as "
                            "{'my_term': tensor} instead")

    # the model lives in the MotionLM (peft wraps it when the first adapter is added)
    @property
    def model(self):
        return self.motion_lm.model

    @model.setter
    def model(self, value):
        self.motion_lm.model = value

    @classmethod
    def capabilities(cls) -> dict[str, Any]:
        """What the harness may ask of the class (never its name): ``joint`` (trained once on the
        union of all experiences), ``order_free`` (the scenario order cannot change its numbers:
        a sweep runs one order), ``routes_generation`` (overrides :meth:`route` or
        :meth:`generate`)."""
        return {"joint": bool(cls.joint), "order_free": bool(cls.joint),
                "routes_generation": cls.route is not MotionLMStrategy.route
                or cls.generate is not MotionLMStrategy.generate}

    # ------------------------------------------------------------------ hooks for methods
    def adapter_name(self, index: int | None = None) -> str:
        """Name of the adapter of experience ``index`` (default: the current one)."""
        return f"exp{self.exp_counter if index is None else index}"

    def add_lora(self, name: str, copy_tokens_from: str | None = None, r: int | None = None):
        """Add + activate a LoRA adapter built from the config (only it trains)."""
        lora.add_adapter(self.motion_lm, name, lora.lora_config(self.config, self.motion_lm, r=r),
                         copy_tokens_from=copy_tokens_from)

    def use_lora(self, name: str) -> bool:
        """For methods that train one LoRA throughout: add adapter ``name`` the first time,
        else make it the active (only trainable) adapter again.  True when just added."""
        if name not in self.motion_lm.adapters:
            self.add_lora(name)
            return True
        lora.set_active(self.motion_lm, name)
        return False

    def add_expert(self, name: str, copy_tokens_from: str | None = None) -> None:
        """Add LoRA adapter ``name`` (only it trains) as the newest expert of ``self.bank``
        (the :class:`ExpertBank`, built and attached on the first call)."""
        self.add_lora(name, copy_tokens_from=copy_tokens_from)
        if self.bank is None:
            self.bank = ExpertBank(self.model, [name]).attach()
        else:
            self.bank.add_expert(name)

    def prompt_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) bool: real text tokens of the prompt (not padding, <som> or motion tokens)."""
        return attention_mask.bool() & (input_ids < self.motion_lm.motion_offset)

    @torch.no_grad()
    def frozen_prompt_features(self, texts: Sequence[str], chunk: int = 256) -> torch.Tensor:
        """(N, D) float64: the prompts' frozen pooled input embeddings (what task-free routers
        read: untouched by training, so a scenario's prompts map to the same point later)."""
        from benchmark.strategy.experts import frozen_prompt_embedding

        out = []
        for s in range(0, len(texts), chunk):
            b = self.motion_lm.generation_inputs(list(texts[s: s + chunk]))
            ids, am = b["input_ids"].to(self.device), b["attention_mask"].to(self.device)
            out.append(frozen_prompt_embedding(self.model, ids, self.prompt_mask(ids, am)))
        return torch.cat(out)

    def before_experience(self, experience) -> None:
        """Set up the trainable parameters for ``experience`` (add/unfreeze adapters...)."""

    def after_experience(self, experience) -> None:
        """Consolidate after training on ``experience`` (freeze, merge, store keys...)."""

    def loss_terms(self, batch: dict, outputs) -> dict[str, torch.Tensor]:
        """Method loss terms by name (the one loss route, shared with the CL plugins), each
        added to the LM loss as returned (weight it yourself; None = no term this step) and
        logged per epoch in ``history`` / train_log.csv under its name.  ``outputs`` is what
        :meth:`forward` returned (a method's forward may add its own entries to it).  The names
        ``lm_loss`` and ``extra_loss`` (the LM loss, the sum of the terms) are the log's own."""
        return {}

    def memory_per_scenario(self) -> dict[str, int]:
        """Bytes one more scenario adds to what the method stores, by kind.  Default: a method
        holding one LoRA adapter per finished experience adds the newest one (``lora_bytes``,
        ``token_rows_bytes``); any other (one adapter reused, or none yet) adds 0.  Override to
        count keys, prompts or memories a method also adds."""
        names = list(self.motion_lm.adapters)
        if self.exp_counter and len(names) == self.exp_counter:
            return lora.adapter_bytes_split(self.motion_lm, names[-1])
        return {"lora_bytes": 0, "token_rows_bytes": 0}

    @property
    def steps_in_experience(self) -> int:
        """Optimiser steps taken so far in the current experience (read-only; with
        :meth:`planned_steps` a method's progress through the experience)."""
        return getattr(self, "_steps", 0)

    def route(self, batch: dict) -> Route | None:
        """Routing hook for generation: ``batch`` is one chunk of prompts (``input_ids``,
        ``attention_mask`` on the device, as ``MotionLM.generation_inputs``; ``texts``) and the
        :class:`Route` says how it is generated (None: the model as it is)."""
        return None

    def routing_weights(self, texts: Sequence[str]) -> np.ndarray | None:
        """Routing diagnostics: (N, E) weight of expert k (created for the k-th experience)
        for each prompt, as :meth:`route` routes them at generation (one-hot for hard routing);
        None: this strategy does not route over experts.  The runner measures ``route_own``
        with it (:mod:`benchmark.strategy.routing`); override for a router outside ``route``."""
        from benchmark.strategy.routing import routing_weights

        return routing_weights(self, texts)

    def use_plugin(self, plugin):
        """Add an Avalanche plugin (e.g. a :class:`~benchmark.strategy.plugins.CLPlugin`: its
        loss terms, batch extension and state then take part like the method's own)."""
        self.plugins.append(plugin)
        self._check_plugin_names()
        return plugin

    @property
    def cl_plugins(self) -> list[CLPlugin]:
        return [p for p in self.plugins if isinstance(p, CLPlugin)]

    def _check_plugin_names(self) -> None:
        names = [p.name for p in self.cl_plugins]
        if len(set(names)) != len(names):
            raise ValueError(f"{type(self).__name__}: plugin used twice: {names}")

    def batch_loss(self, batch: dict) -> torch.Tensor:
        """The LM loss of one collated batch through this method's :meth:`forward` (what a
        plugin needs for a Fisher estimate, say); the training mini-batch is left alone."""
        old = self.mbatch
        self.mbatch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        try:
            return self.forward().loss
        finally:
            self.mbatch = old

    def keep(self, name: str, value=None, *, on_device: bool = True):
        """Declare ``self.<name>`` method state carried across experiences: set it to ``value``
        and checkpoint it with the run (read when the checkpoint is written, so reassigning
        ``self.<name>`` later is fine).  Tensors come back on the strategy's device
        (``on_device=False``: on the CPU); ``torch.Generator`` / numpy ``Generator`` and objects
        with ``state_dict``/``load_state_dict`` are restored in place.  Returns ``value``."""
        if name in self.state_parts():
            raise ValueError(f"{type(self).__name__}.keep({name!r}): the base checkpoints "
                             f"{name!r} itself; keep the method's own values under other names")
        self._kept[name] = bool(on_device)
        setattr(self, name, value)
        return value

    def eval_mode(self, *modules):
        """Context manager: the LM (default) or ``modules`` in eval mode, modes restored after."""
        return _seed.eval_mode(*(modules or (self.model,)))

    def seeded(self, offset: int = 0):
        """Context manager: torch's CPU RNG seeded with ``seed + offset`` inside (build a method's
        modules in it: the same initial weights in every process), restored after."""
        return _seed.seeded(self.seed + offset)

    # ------------------------------------------------------------------ template overrides
    def _before_training_exp(self, **kwargs):
        self.before_experience(self.experience)
        if self.config.token_rows == "freeze_after_first" and self.exp_counter > 0:
            self.freeze_token_rows()
        super()._before_training_exp(**kwargs)
        self._install_speed_levers()

    def _install_speed_levers(self) -> None:
        """The training options ``loss_logits_only`` and ``compile`` (docs/runner.md), on the
        model as it is after :meth:`before_experience`; removed again after the experience."""
        self._remove_speed_levers()
        if self.config.loss_logits_only:
            if any(p.name == "lwf" for p in self.cl_plugins) or hasattr(self, "lwf"):
                raise ValueError(f"{type(self).__name__}: loss_logits_only keeps logits at the loss "
                                 "positions only, but LwF distils full logits; set "
                                 "loss_logits_only=false")
            self._loss_head = speed.LossPositionsHead(self.model, speed.causal_lm_of(self.model))
        if self.config.compile:
            if self.bank is not None:
                raise ValueError(f"{type(self).__name__}: compile is not supported with an expert "
                                 "bank (its routing state lives outside the layers); set compile=false")
            speed.compile_layers(self.model)

    def _remove_speed_levers(self) -> None:
        if self._loss_head is not None:
            self._loss_head.remove()
            self._loss_head = None
        if self.config.compile:              # generation runs the eager layers
            speed.uncompile_layers(self.model)

    def freeze_token_rows(self) -> None:
        """Protocol rule ``token_rows=freeze_after_first``: after the first experience no
        motion-token row trains (the adapters' peft ``trainable_tokens_delta`` copies; methods
        keeping their rows elsewhere override this)."""
        for n, p in self.model.named_parameters():
            if "trainable_tokens_delta" in n.split("."):
                p.requires_grad_(False)

    def planned_steps(self) -> int:
        """Optimiser steps the current experience will take: epochs x batches, capped by
        ``max_steps`` (what the learning-rate schedule and progress-based rules count to)."""
        total = len(self.dataloader) * self.config.epochs
        if self.config.max_steps:
            total = min(total, self.config.max_steps)
        return max(total, 1)

    def experience_lr(self) -> float:
        """Learning rate of the current experience (``config.lr``; O-LoRA lowers it after the
        first task as its reference scripts do)."""
        return float(self.config.lr)

    def _after_training_exp(self, **kwargs):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._remove_speed_levers()
        super()._after_training_exp(**kwargs)
        self.after_experience(self.experience)
        self.exp_counter += 1

    def trainable_named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        named += [(f"method.{n}", p) for n, p in self.method_modules.named_parameters()
                  if p.requires_grad]
        return named

    def check_model_and_optimizer(self, **kwargs):
        self.model = self.model_adaptation()
        self.make_optimizer()

    def make_optimizer(self, **kwargs):
        """Fresh AdamW over the trainable parameters; state carried over by name unless
        ``config.reset_optimizer`` (a resumed run restores the saved state here)."""
        self.method_modules.to(self.device)
        named = self.trainable_named_parameters()
        if not named:
            raise RuntimeError(f"{type(self).__name__}: nothing to train; before_experience must "
                               "add or unfreeze an adapter")
        if self.config.reset_optimizer:      # also after --resume: as in an uninterrupted run
            carry = {}
        elif self._pending_opt is not None:
            carry = self._pending_opt
        else:
            carry = self._named_optimizer_state()
        self._pending_opt = None
        params = [p for _, p in named]
        self.optimizer = torch.optim.AdamW(params, lr=self.experience_lr(),
                                           weight_decay=self.config.weight_decay,
                                           fused=_fused_ok(params) or None)
        self._opt_names = [n for n, _ in named]
        schedule, total = self.config.lr_schedule, self.planned_steps()
        self.lr_scheduler = None if schedule == "constant" else torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(schedule, step, total))
        fused = bool(self.optimizer.param_groups[0]["fused"])   # fused: step on the device too
        for n, p in named:
            if n in carry and carry[n]["exp_avg"].shape == p.shape:
                self.optimizer.state[p] = {
                    k: v.to(p.device) if torch.is_tensor(v) and (v.dim() or fused) else v
                    for k, v in carry[n].items()}

    def make_train_dataloader(self, **kwargs):
        """Seeded shuffling per experience so a resumed run sees the same batches."""
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.exp_counter)
        if self.config.length_bucketing:      # similar lengths per batch (less padding)
            sampler = speed.LengthBucketSampler(self.item_lengths(self.adapted_dataset),
                                                self.config.batch_size, gen)
            self.dataloader = DataLoader(self.adapted_dataset, batch_sampler=sampler,
                                         collate_fn=self.collate, num_workers=0)
            return
        self.dataloader = DataLoader(self.adapted_dataset, batch_size=self.config.batch_size,
                                     shuffle=True, generator=gen, collate_fn=self.collate,
                                     num_workers=0)

    def item_lengths(self, dataset) -> list[int]:
        """Token length of each item of ``dataset`` as :meth:`collate_items` builds it (prompt +
        ``<som>`` + capped motion codes + ``<eom>``)."""
        items = [dataset[i] for i in range(len(dataset))]
        if not items:
            return []
        prompts = self.motion_lm.prompt_ids([it["text"] for it in items])
        cap = self.motion_lm.config.max_motion_tokens
        return [len(p) + min(len(self._codes(it)), cap) + 2 for p, it in zip(prompts, items)]

    def collate(self, items: Sequence[dict]) -> dict:
        """Training: the plugins' ``extend_items`` first (replay...), then :meth:`collate_items`."""
        if self.is_training:
            for p in self.cl_plugins:
                items = p.extend_items(self, list(items))
        return self.collate_items(items)

    def collate_items(self, items: Sequence[dict]) -> dict:
        """Stream items -> LM batch (+ emotion/scenario/subset int64, texts, ids)."""
        texts = [it["text"] for it in items]
        codes = [self._codes(it) for it in items]
        batch = self.motion_lm.build_batch(texts, codes)
        for key in ("emotion", "scenario", "subset"):
            if key in items[0]:
                batch[key] = torch.tensor([int(it[key]) for it in items], dtype=torch.int64)
        batch["texts"] = texts
        batch["ids"] = [it.get("id") for it in items]
        return batch

    @staticmethod
    def _codes(item: dict) -> np.ndarray:
        codes = np.asarray(item.get("motion_ids", item.get("features")))
        if codes.ndim != 1 or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"item {item.get('id')!r} carries {codes.dtype} array of shape "
                             f"{codes.shape}, not motion codes; build the scenario with "
                             "payload = motion tokenizer codes")
        return codes

    def _unpack_minibatch(self):
        self.mbatch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                       for k, v in self.mbatch.items()}

    @property
    def mb_x(self):
        return self.mbatch["input_ids"]

    @property
    def mb_y(self):
        return self.mbatch["labels"]

    @property
    def mb_task_id(self):
        return self.mbatch["subset"]

    def forward(self):
        b = self.mbatch
        return self.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                          labels=b["labels"], output_hidden_states=self.output_hidden_states)

    def all_loss_terms(self, batch: dict, outputs) -> dict[str, torch.Tensor]:
        """The loss terms of one step, in order: the method's :meth:`loss_terms`, then each CL
        plugin's (a name used twice, or a name of the log's own, is an error)."""
        sources = [(type(self).__name__, self.loss_terms(batch, outputs))]
        sources += [(f"plugin {p.name!r}", p.loss_terms(self, batch, outputs)) for p in self.cl_plugins]
        terms: dict[str, torch.Tensor] = {}
        for who, returned in sources:
            for k, v in returned.items():
                if k in terms or k in ("lm_loss", "extra_loss"):
                    raise ValueError(f"loss term {k!r} of {who} is already a term or a column of "
                                     "the training log; give it another name")
                terms[k] = v
        return {k: v for k, v in terms.items() if v is not None}

    def criterion(self):
        lm = self.mb_output.loss
        terms = self.all_loss_terms(self.mbatch, self.mb_output)
        self._sums["lm_loss"] += lm.detach()
        extra = None
        for name, value in terms.items():
            self.log_loss(name, value)
            extra = value if extra is None else extra + value
        if extra is not None:
            self._sums["extra_loss"] += extra.detach()
        return lm if extra is None else lm + extra

    def log_loss(self, name: str, value: torch.Tensor) -> None:
        """Add ``value`` to this epoch's sums (``history`` gets its mean per step under ``name``);
        :meth:`criterion` calls it for every loss term.  A no-op outside a training epoch."""
        sums = getattr(self, "_sums", None)
        if sums is not None:
            sums[name] = sums.get(name, 0.0) + value.detach()

    def optimizer_step(self):
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"],
                                           self.config.grad_clip)
        self.optimizer.step()
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()

    def _before_training_epoch(self, **kwargs):
        from tqdm.auto import tqdm

        if self._stop_training:          # max_steps reached: avalanche ends the experience
            return super()._before_training_epoch(**kwargs)
        self._sums = {"lm_loss": torch.zeros((), device=self.device),
                      "extra_loss": torch.zeros((), device=self.device)}
        self._steps = getattr(self, "_steps", 0) if self.clock.train_exp_epochs else 0
        self._epoch_steps = 0
        if self._bar is None:            # one bar per experience: steps of its budget, loss
            budget = len(self.dataloader) * max(int(self.train_epochs), 1)
            self._bar = tqdm(total=min(budget, self.config.max_steps or budget), leave=False,
                             disable=not self.progress, desc=f"experience {self.exp_counter + 1}",
                             unit="step", mininterval=1.0, dynamic_ncols=True)
        super()._before_training_epoch(**kwargs)

    def _after_training_iteration(self, **kwargs):
        self._steps += 1
        self._epoch_steps += 1
        self._bar.update(1)
        if self.progress and self._epoch_steps % 50 == 0:
            self._bar.set_postfix(loss=f"{float(self._sums['lm_loss']) / self._epoch_steps:.3f}",
                                  refresh=False)
        if self.config.max_steps and self._steps >= self.config.max_steps:
            self.stop_training()
        super()._after_training_iteration(**kwargs)

    def _after_training_epoch(self, **kwargs):
        n = max(self._epoch_steps, 1)
        self.history.append({"experience": self.exp_counter + 1,
                             "epoch": int(self.clock.train_exp_epochs) + 1,
                             "steps": self._epoch_steps,
                             **{k: float(v) / n for k, v in self._sums.items()}})
        super()._after_training_epoch(**kwargs)
