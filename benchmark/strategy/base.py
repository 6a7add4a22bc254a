"""``MotionLMStrategy``: the Avalanche ``SupervisedTemplate`` every L2-EMG method subclasses.

Training is ``strategy.train(experience)`` over ``scenario.train_stream``; experience items are
the stream's ``MotionItem`` dicts whose ``features`` hold motion-token codes (the runner builds
the scenario with ``payload = motion tokenizer codes``).  What the template does for the LM:

* ``collate``: items -> ``MotionLM.build_batch`` (input_ids, attention_mask, labels) + emotion,
  scenario, subset (int64) and texts; the loader is a seeded torch ``DataLoader`` (resumable);
* ``forward``: the HF model with labels -> its output (``loss`` = next-token LM loss);
* ``criterion``: LM loss + :meth:`extra_loss` (both logged separately in ``history``);
* ``make_optimizer``: AdamW (torch's fused kernel on CPU/CUDA) over the parameters that
  ``requires_grad`` after :meth:`before_experience` (+ ``method_modules``), state reset or
  carried by parameter name.

Methods override small hooks: :meth:`before_experience` / :meth:`after_experience` (add, freeze,
merge adapters...), :meth:`extra_loss`, :meth:`generate` (route at inference),
:meth:`state_dict` / :meth:`load_state_dict` (method state for checkpoints).  Avalanche plugins
and its ``before/after_training_exp`` callbacks work as usual.  Evaluation stays outside.
"""
from __future__ import annotations

import warnings
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from torch.utils.data import DataLoader

from benchmark.strategy import lora
from benchmark.strategy.config import StrategyConfig
from benchmark.strategy.experts import ExpertBank


def _silent_evaluator() -> EvaluationPlugin:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        return EvaluationPlugin(loggers=[])


def _fused_ok(params: Sequence[torch.Tensor]) -> bool:
    """True when torch's fused AdamW kernel takes these parameters (floating point, all on CPU
    or all on CUDA): one kernel for every tensor instead of a Python loop over them, the same
    update for every method (a method with many small tensors is not charged for their count)."""
    devices = {p.device.type for p in params}
    return len(devices) == 1 and devices <= {"cpu", "cuda"} and all(
        p.is_floating_point() for p in params)


class MotionLMStrategy(SupervisedTemplate):
    """Base of every L2-EMG strategy (one class + one config dataclass per method)."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = StrategyConfig
    joint: ClassVar[bool] = False                 # True: the runner trains once on all data
    output_hidden_states: ClassVar[bool] = False  # forward() asks the LM for hidden states

    def __init__(self, *, motion_lm, config: StrategyConfig | None = None,
                 device: str | torch.device = "cpu", plugins: Sequence | None = None,
                 seed: int = 0, progress: bool = False):
        self.motion_lm = motion_lm
        self.config = config if config is not None else self.config_class()
        self.seed = int(seed)
        self.progress = progress
        self.method_modules = torch.nn.ModuleDict()   # gates, keys ... (trained + checkpointed)
        self.bank: ExpertBank | None = None           # LoRA experts mixed by a gate, if any
        self.history: list[dict] = []                 # per epoch: lm_loss, extra_loss, steps
        self.exp_counter = 0                          # experiences finished
        self._pending_opt: dict | None = None
        self._opt_names: list[str] = []
        self._bar = None
        placeholder = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=self.config.lr)
        super().__init__(model=motion_lm.model, optimizer=placeholder,
                         train_mb_size=self.config.batch_size, train_epochs=self.config.epochs,
                         eval_mb_size=self.config.batch_size, device=device,
                         plugins=list(plugins or []), evaluator=_silent_evaluator(), eval_every=-1)

    # the model lives in the MotionLM (peft wraps it when the first adapter is added)
    @property
    def model(self):
        return self.motion_lm.model

    @model.setter
    def model(self, value):
        self.motion_lm.model = value

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

    def before_experience(self, experience) -> None:
        """Set up the trainable parameters for ``experience`` (add/unfreeze adapters...)."""

    def after_experience(self, experience) -> None:
        """Consolidate after training on ``experience`` (freeze, merge, store keys...)."""

    def extra_loss(self, batch: dict, outputs) -> torch.Tensor | None:
        """Method-specific loss term added to the LM loss (None = none)."""
        return None

    def generate(self, texts: Sequence[str], settings=None) -> list[np.ndarray]:
        """Motion codes for each text (empty array = failed output); override to route."""
        self.model.to(self.device)
        return self.motion_lm.generate(list(texts), settings, device=self.device)

    def state_dict(self) -> dict[str, Any]:
        """Method-specific state (enough to rebuild the method's own modules)."""
        return {"method_modules": self.method_modules.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.method_modules.load_state_dict(state["method_modules"])

    # ------------------------------------------------------------------ checkpoint
    def checkpoint_state(self) -> dict[str, Any]:
        """Adapters, method state, optimizer (by parameter name), counters, loss history."""
        return {"adapters": lora.adapter_state(self.motion_lm), "strategy": self.state_dict(),
                "optimizer": self._named_optimizer_state(), "exp_counter": self.exp_counter,
                "history": list(self.history)}

    def restore(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`checkpoint_state` on a freshly built strategy."""
        lora.load_adapter_state(self.motion_lm, state["adapters"])
        self.load_state_dict(state["strategy"])
        self._pending_opt = state["optimizer"]
        self.exp_counter = int(state["exp_counter"])
        self.history = list(state["history"])
        self.model.to(self.device)
        self.method_modules.to(self.device)

    def _named_optimizer_state(self) -> dict[str, dict]:
        out = {}
        for name, p in zip(self._opt_names, self.optimizer.param_groups[0]["params"]):
            st = self.optimizer.state.get(p)
            if st:
                out[name] = {k: v.detach().cpu().clone() if torch.is_tensor(v) else v
                             for k, v in st.items()}
        return out

    # ------------------------------------------------------------------ template overrides
    def _before_training_exp(self, **kwargs):
        self.before_experience(self.experience)
        if self.config.token_rows == "freeze_after_first" and self.exp_counter > 0:
            self.freeze_token_rows()
        super()._before_training_exp(**kwargs)

    def freeze_token_rows(self) -> None:
        """Protocol rule ``token_rows=freeze_after_first``: after the first experience no
        motion-token row trains (the adapters' peft ``trainable_tokens_delta`` copies; methods
        keeping their rows elsewhere override this)."""
        for n, p in self.model.named_parameters():
            if "trainable_tokens_delta" in n.split("."):
                p.requires_grad_(False)

    def experience_lr(self) -> float:
        """Learning rate of the current experience (``config.lr``; O-LoRA lowers it after the
        first task as its reference scripts do)."""
        return float(self.config.lr)

    def _after_training_exp(self, **kwargs):
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
        fused = bool(self.optimizer.param_groups[0]["fused"])   # fused: step on the device too
        for n, p in named:
            if n in carry and carry[n]["exp_avg"].shape == p.shape:
                self.optimizer.state[p] = {
                    k: v.to(p.device) if torch.is_tensor(v) and (v.dim() or fused) else v
                    for k, v in carry[n].items()}

    def make_train_dataloader(self, **kwargs):
        """Seeded shuffling per experience so a resumed run sees the same batches."""
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.exp_counter)
        self.dataloader = DataLoader(self.adapted_dataset, batch_size=self.config.batch_size,
                                     shuffle=True, generator=gen, collate_fn=self.collate,
                                     num_workers=0)

    def collate(self, items: Sequence[dict]) -> dict:
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

    def criterion(self):
        lm = self.mb_output.loss
        extra = self.extra_loss(self.mbatch, self.mb_output)
        self._sums["lm_loss"] += lm.detach()
        if extra is not None:
            self._sums["extra_loss"] += extra.detach()
        return lm if extra is None else lm + extra

    def log_loss(self, name: str, value: torch.Tensor) -> None:
        """Add a loss term (e.g. one part of :meth:`extra_loss`) to this epoch's sums; ``history``
        gets its mean per step under ``name``.  A no-op outside a training epoch."""
        sums = getattr(self, "_sums", None)
        if sums is not None:
            sums[name] = sums.get(name, 0.0) + value.detach()

    def optimizer_step(self):
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"],
                                           self.config.grad_clip)
        self.optimizer.step()

    def _before_training_epoch(self, **kwargs):
        from tqdm.auto import tqdm

        if self._stop_training:          # max_steps reached: avalanche ends the experience
            return super()._before_training_epoch(**kwargs)
        self._sums = {"lm_loss": torch.zeros((), device=self.device),
                      "extra_loss": torch.zeros((), device=self.device)}
        self._steps = getattr(self, "_steps", 0) if self.clock.train_exp_epochs else 0
        self._epoch_steps = 0
        self._bar = tqdm(total=len(self.dataloader), disable=not self.progress, leave=False,
                         desc=f"exp {self.exp_counter + 1} batches", unit="batch")
        super()._before_training_epoch(**kwargs)

    def _after_training_iteration(self, **kwargs):
        self._steps += 1
        self._epoch_steps += 1
        self._bar.update(1)
        if self.config.max_steps and self._steps >= self.config.max_steps:
            self.stop_training()
        super()._after_training_iteration(**kwargs)

    def _after_training_epoch(self, **kwargs):
        n = max(self._epoch_steps, 1)
        self.history.append({"experience": self.exp_counter + 1,
                             "epoch": int(self.clock.train_exp_epochs) + 1,
                             "steps": self._epoch_steps,
                             **{k: float(v) / n for k, v in self._sums.items()}})
        self._bar.close()
        super()._after_training_epoch(**kwargs)
