"""ES-MoE: Emotion-Transferable and Scenario-Adapted Mixture of Experts (Wang et al., "Towards
Closed-Loop Embodied Empathy Evolution: Probing LLM-Centric Lifelong Empathic Motion Generation
in Unseen Scenarios", AAAI; Section "Approach", Algorithm 1, Eq. 4, L = L_llm + lambda L_emo),
as the paper writes it (docs/es_moe.md: one table, paper says / we do / why).

Per batch: X = the LM's input token embeddings (B, T, d); on the prompt tokens CGED gives the
emotion-highlighted h (B, T, d) and its masked mean (B, d); the emotion head on it gives L_emo;
h is added to the prompt embeddings through a zero-initialised tanh gate (the LM starts from its
own input and learns how much of h to use); the pooled h drives the expert gate (Eq. 4) whose
per-sample weights (B, E) mix the LoRA experts in the shared :class:`ExpertBank`: earlier experts
masked at random by the training time point, top-k kept and re-softmaxed.
At generation the gate and the injection are computed once per prompt and held fixed.
Ablations are switches (``cged``, ``samoe``, ``lambda_emo``) registered under their own names.

``es_moe_routed`` (:class:`ESMoERouted`) is the repaired variant with ONE deviation: the expert
scores are the Gaussian log-likelihood of the frozen pooled caption embedding under each
scenario's prototype (shared covariance, :class:`~benchmark.strategy.experts.PrototypeRouter`)
instead of query(h) . K_j; CGED, L_emo, masking and top-k are unchanged.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from benchmark.io import DataError
from benchmark.strategy import MotionLMStrategy, Route, lora, register_strategy
from benchmark.strategy.config import StrategyConfig
from benchmark.strategy.experts import PrototypeRouter, frozen_prompt_embedding, topk_softmax
from methods.es_moe.cged import CGED, masked_mean
from methods.es_moe.gate import ExpertGate, mask_probability


@dataclass
class ESMoEConfig(StrategyConfig):
    """ES-MoE switches and sizes (the paper gives none of the sizes; ours are small defaults)."""

    cged: bool = field(default=True, metadata={"help": "use the CGED block (False: h = X, no L_emo)"})
    samoe: bool = field(default=True, metadata={"help": "one gated LoRA expert per scenario "
                                                        "(False: one shared LoRA, no gate)"})
    lambda_emo: float = field(default=0.1, metadata={"help": "weight of L_emo (0 = off)"})
    inject_h: bool = field(default=True, metadata={"help": "add tanh(a) * h to the prompt "
                                                           "embeddings (a starts at 0)"})
    n_emotions: int = field(default=0, metadata={"help": "emotion classes of L_emo (0 = the "
                                                          "corpus's emotion count; 7 if unknown)"})
    n_dict: int = field(default=16, metadata={"help": "K-means dictionary entries K"})
    d_attn: int = field(default=32, metadata={"help": "CGED query/key/value size"})
    d_ffn: int = field(default=64, metadata={"help": "hidden size of FFN1/FFN2"})
    emo_hidden: int = field(default=64, metadata={"help": "emotion classifier hidden width"})
    max_experts: int = field(default=8, metadata={"help": "experts (scenarios) at most"})
    d_key: int = field(default=64, metadata={"help": "expert key size (>= max_experts)"})
    d_down: int = field(default=32, metadata={"help": "gate down-projection size"})
    top_k: int = field(default=2, metadata={"help": "experts kept per sample (0 = all)"})
    mask_p0: float = field(default=0.5, metadata={
        "help": "masking prob. of a trained expert at the start of an experience; "
                "p = p0 * (1 - progress)"})
    diag_prompts: int = field(default=32, metadata={
        "help": "prompts per experience kept for the per-experience diagnostics only (gate "
                "entropy, usage per subset...; never trained on; 0 = no diagnostics)"})

    def __post_init__(self):
        super().__post_init__()
        checks = [(self.lambda_emo >= 0, "lambda_emo must be >= 0"),
                  (0 <= self.mask_p0 <= 1, "mask_p0 must be in [0, 1]"),
                  (self.top_k >= 0, "top_k must be >= 0"),
                  (self.diag_prompts >= 0, "diag_prompts must be >= 0"),
                  (self.d_key >= self.max_experts, "d_key must be >= max_experts"),
                  (self.n_emotions >= 0, "n_emotions must be >= 0 (0 = from the corpus)"),
                  (min(self.n_dict, self.d_attn, self.d_ffn, self.emo_hidden,
                       self.max_experts, self.d_down) >= 1, "sizes must be >= 1")]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"{type(self).__name__}: {msg}")


@register_strategy("es_moe", config=ESMoEConfig)
class ESMoE(MotionLMStrategy):
    """ES-MoE: CGED emotion decoupling + gated per-scenario LoRA experts (the paper's method)."""

    display_name = "ES-MoE"
    paper_row = 8

    key_gate: ClassVar[bool] = True     # Eq. 4 gate (query network + orthogonal keys)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        c = self.config
        d = self.motion_lm.model.get_input_embeddings().weight.shape[1]
        with self.seeded():
            if c.cged:
                n_emo = c.n_emotions or len(self.label_spaces.get("emotions", ())) or 7
                self.method_modules["cged"] = CGED(d, c.d_attn, c.n_dict, c.d_ffn, n_emo,
                                                   c.emo_hidden, seed=self.seed)
            if c.samoe and self.key_gate:
                self.method_modules["gate"] = ExpertGate(d, c.d_key, c.d_down, c.max_experts)
        # declared state (checkpointed): the masking generator and the diagnostics
        self._mask_gen = self.keep("_mask_gen", torch.Generator().manual_seed(self.seed))
        self.diag_items: list[dict] = self.keep("diag_items", [])   # {"subset", "texts", "emotions"}
        self.diagnostics: list[dict] = self.keep("diagnostics", [])  # see :meth:`diagnose`
        self.last_weights: torch.Tensor | None = None   # gate weights of the last training step

    # ------------------------------------------------------------------ experts
    @property
    def experts(self) -> list[str]:
        return list(self.bank.experts) if self.bank is not None else []

    def before_experience(self, experience) -> None:
        c, i = self.config, self.exp_counter
        if c.samoe:
            if i >= c.max_experts:
                raise DataError(None, f"experience {i + 1} needs more than max_experts="
                                f"{c.max_experts} experts", "raise --set max_experts=N")
            prev = self.experts[-1] if self.experts else None
            self.add_expert(f"expert{i}", copy_tokens_from=prev)    # only it trains
            if "gate" in self.method_modules:
                for j, key in enumerate(self.method_modules["gate"].keys):
                    key.requires_grad_(j == i)                  # only the new key trains
        elif "shared" not in self.motion_lm.adapters:
            self.add_lora("shared")
        if c.cged and not self.method_modules["cged"].fitted:   # K-means once: "initialize"
            self.method_modules["cged"].fit_dictionary(self.prompt_features(experience))

    def after_experience(self, experience) -> None:
        if self.config.samoe:
            lora.freeze_adapter(self.motion_lm, self.experts[-1])
            if "gate" in self.method_modules:
                self.method_modules["gate"].keys[len(self.experts) - 1].requires_grad_(False)
        if self.config.diag_prompts:
            self._keep_diag_items(experience)
            self.diagnostics.append(self.diagnose())
            if self.history:         # flat columns of this experience's last train_log row
                self.history[-1].update(_flat_diagnostics(self.diagnostics[-1]))

    # ------------------------------------------------------------------ diagnostics
    def _keep_diag_items(self, experience) -> None:
        data = experience.dataset
        n = len(data)
        idx = np.random.default_rng(self.seed * 7919 + self.exp_counter).permutation(n)
        idx = idx[: self.config.diag_prompts]
        items = [data[int(i)] for i in idx]
        self.diag_items.append({"subset": str(getattr(experience, "subset_name", self.exp_counter)),
                                "texts": [it["text"] for it in items],
                                "emotions": [int(it.get("emotion", -1)) for it in items]})

    @torch.no_grad()
    def diagnose(self) -> dict:
        """Per-experience diagnostics on the kept training prompts of every subset seen so far
        (eval mode, no masking): gate entropy (nats) and the fraction of prompts whose top
        expert is the current one (on the current subset), the mean gate weight of every expert
        on every subset, per subset j the fraction routed to its own expert j (``route_own``),
        tanh(alpha), ||injection|| / ||X|| and ||h|| / ||X|| on the prompt tokens, and the
        emotion head's accuracy on the current subset's kept prompts.  (The runner measures
        routing on the test prompts for every routed method: matrices/route_own.csv.)"""
        c = self.config
        out: dict = {"experience": self.exp_counter + 1, "usage": {}}
        with self.eval_mode(self.model, self.method_modules):
            for j, d in enumerate(self.diag_items):
                b = self.motion_lm.generation_inputs(d["texts"])
                ids, am = b["input_ids"].to(self.device), b["attention_mask"].to(self.device)
                x, pooled, h = self.encode(ids, am)
                current = j == len(self.diag_items) - 1
                if c.samoe:
                    w = self.gate_weights(self.expert_scores(ids, am, pooled), train=False)
                    out["usage"][d["subset"]] = w.mean(0).tolist()
                    own = float((w.argmax(-1) == j).float().mean())   # subset j <-> expert j
                    out.setdefault("route_own", {})[d["subset"]] = own
                    if current:
                        ent = -(w * w.clamp_min(1e-12).log()).sum(-1)
                        out["gate_entropy"] = float(ent.mean())
                        out["route_current"] = float((w.argmax(-1) == w.shape[1] - 1).float().mean())
                if current and h is not None:
                    cged = self.method_modules["cged"]
                    mask = self.prompt_mask(ids, am)
                    raw = self.model.get_input_embeddings()(ids).float()
                    m = mask[..., None].float()
                    xn = (raw * m).norm()
                    out["tanh_alpha"] = float(torch.tanh(cged.inject_gate))
                    span = h.shape[1]
                    out["h_over_x"] = float((h * m[:, :span]).norm() / xn)
                    out["inject_over_x"] = float(((x.float() - raw) * m).norm() / xn)
                    emo = torch.tensor(d["emotions"], device=pooled.device)
                    if (emo >= 0).all():
                        pred = cged.emotion_logits(pooled).argmax(-1)
                        out["emo_acc"] = float((pred == emo).float().mean())
        return out

    # ------------------------------------------------------------------ CGED inputs
    @torch.no_grad()
    def prompt_features(self, experience, chunk: int = 256) -> np.ndarray:
        """(N, d) mean-pooled token embeddings X of the experience's training prompts (CGED's
        input space: what the dictionary is fitted on)."""
        texts = [item["text"] for item in experience.dataset]
        emb = self.model.get_input_embeddings()
        dev = emb.weight.device
        out = []
        for s in range(0, len(texts), chunk):
            batch = self.motion_lm.generation_inputs(texts[s: s + chunk])
            ids, am = batch["input_ids"].to(dev), batch["attention_mask"].to(dev)
            out.append(masked_mean(emb(ids).float(), self.prompt_mask(ids, am)).cpu())
        return torch.cat(out).numpy()

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """-> (inputs_embeds (B, T, d) for the LM, pooled h (B, d), h (B, S, d) or None).
        CGED runs only on the S columns up to the last prompt token (the rest is motion)."""
        x = self.model.get_input_embeddings()(input_ids)
        mask = self.prompt_mask(input_ids, attention_mask)
        cged = self.method_modules["cged"] if self.config.cged else None
        if cged is None:
            return x, masked_mean(x.float(), mask), None
        span = int(mask.any(0).nonzero().max()) + 1 if mask.any() else 1  # prompt columns
        xs, ms = x[:, :span], mask[:, :span]
        h = cged(xs, ms)
        if self.config.inject_h:
            x = torch.cat([xs + cged.inject(h, ms).to(x.dtype), x[:, span:]], 1)
        return x, masked_mean(h, ms), h

    # ------------------------------------------------------------------ gate
    def expert_scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      pooled: torch.Tensor) -> torch.Tensor:
        """(B, E) Eq. 4 logits QueryEmbedding(h) . K_j over the experts so far."""
        return self.method_modules["gate"].scores(pooled, len(self.experts))

    def gate_weights(self, scores: torch.Tensor, train: bool) -> torch.Tensor:
        """(B, E) scores -> weights: when training, earlier experts masked at random with
        p = p0 (1 - progress) (the current one never); top-k kept, softmax over them."""
        n, c = scores.shape[1], self.config
        mask = None
        if train and n > 1 and c.mask_p0 > 0:
            p = mask_probability(c.mask_p0, self._progress())
            mask = self.method_modules["gate"].random_mask(len(scores), n, p, self._mask_gen) \
                if "gate" in self.method_modules else _random_mask(len(scores), n, p, self._mask_gen)
            mask = mask.to(scores.device)
        w = topk_softmax(scores.float(), k=c.top_k or None, mask=mask)
        if train:
            self.last_weights = w.detach()
        return w

    def _progress(self) -> float:
        return self.steps_in_experience / self.planned_steps()

    def routing(self, weights: torch.Tensor | None):
        """Context: the expert bank uses ``weights`` (B, E) (no-op without SAMoE)."""
        return self.bank.route(weights=weights) if weights is not None else contextlib.nullcontext()

    # ------------------------------------------------------------------ training
    def forward(self):
        b = self.mbatch
        x, pooled, h = self.encode(b["input_ids"], b["attention_mask"])
        emo = None
        if h is not None and self.config.lambda_emo > 0:
            if "emotion" not in b:
                raise DataError(None, "ES-MoE's L_emo needs an 'emotion' label on every item",
                                "build the stream from a corpus with labels.csv emotions")
            emo = self.method_modules["cged"].emotion_loss(pooled, b["emotion"])
        w = None
        if self.config.samoe:
            w = self.gate_weights(self.expert_scores(b["input_ids"], b["attention_mask"], pooled),
                                  train=True)
        with self.routing(w):
            out = self.model(inputs_embeds=x, attention_mask=b["attention_mask"], labels=b["labels"])
        if emo is not None:
            out["emo_loss"] = emo           # read by loss_terms
        return out

    def loss_terms(self, batch: dict, outputs) -> dict[str, torch.Tensor]:
        """lambda * L_emo (none when CGED is off or lambda = 0), logged as ``emo_loss``."""
        if outputs.get("emo_loss") is not None:
            return {"emo_loss": self.config.lambda_emo * outputs["emo_loss"]}
        return {}

    # ------------------------------------------------------------------ generation
    def route(self, batch):
        """Gate + injection computed once per prompt batch from its h, held fixed while sampling
        (before the first experience: the untrained backbone, as for every method)."""
        if not self.motion_lm.adapters:
            return None
        ids, am = batch["input_ids"], batch["attention_mask"]
        x, pooled, _ = self.encode(ids, am)
        w = (self.gate_weights(self.expert_scores(ids, am, pooled), train=False)
             if self.config.samoe else None)
        return Route(weights=w, inputs_embeds=x)

    def memory_per_scenario(self) -> dict[str, int]:
        """Bytes added per scenario: one LoRA expert (A, B), its key, its motion-token rows."""
        name = self.experts[-1] if self.experts else "shared"
        key = self.method_modules["gate"].keys[0] if "gate" in self.method_modules else None
        key_b = key.numel() * key.element_size() if key is not None else 0
        return {**lora.adapter_bytes_split(self.motion_lm, name), "key_bytes": key_b}


def _random_mask(batch: int, n: int, p: float, generator) -> torch.Tensor:
    """(B, n) bool: each earlier expert kept with prob. 1 - p, the last (current) always."""
    keep = torch.rand(batch, n, generator=generator) >= p
    keep[:, -1] = True
    return keep


def _flat_diagnostics(d: dict) -> dict:
    """Diagnostics as flat numeric columns for train_log.csv (``diag_usage_s<j>_e<k>``:
    mean weight of expert k on the j-th subset of the order, both 1-based)."""
    flat = {f"diag_{k}": v for k, v in d.items() if k not in ("usage", "experience", "route_own")}
    for j, w in enumerate(d.get("usage", {}).values()):
        flat.update({f"diag_usage_s{j + 1}_e{k + 1}": float(v) for k, v in enumerate(w)})
    for j, v in enumerate(d.get("route_own", {}).values()):
        flat[f"diag_route_own_s{j + 1}"] = float(v)
    return flat


@dataclass
class ESMoENoCGEDConfig(ESMoEConfig):
    cged: bool = field(default=False, metadata={"help": "w/o CGED: h = X, no dictionary, no L_emo"})


@dataclass
class ESMoENoSAMoEConfig(ESMoEConfig):
    samoe: bool = field(default=False, metadata={"help": "w/o SAMoE: one shared LoRA, no gate"})


@dataclass
class ESMoENoEmoConfig(ESMoEConfig):
    lambda_emo: float = field(default=0.0, metadata={"help": "w/o L_emo: lambda = 0"})


@register_strategy("es_moe_no_cged", config=ESMoENoCGEDConfig)
class ESMoENoCGED(ESMoE):
    """ES-MoE w/o CGED (Table 2 ablation): the gate reads the pooled embeddings X."""

    display_name = "w/o CGED"
    paper_row = 9


@register_strategy("es_moe_no_samoe", config=ESMoENoSAMoEConfig)
class ESMoENoSAMoE(ESMoE):
    """ES-MoE w/o SAMoE (Table 2 ablation): one LoRA shared by all scenarios."""

    display_name = "w/o SAMoE"
    paper_row = 10


@register_strategy("es_moe_no_emo_loss", config=ESMoENoEmoConfig)
class ESMoENoEmoLoss(ESMoE):
    """ES-MoE w/o L_emo (Table 2 ablation): lambda = 0."""

    display_name = "w/o L_emo"
    latex_name = r"w/o $\mathcal{L}_{emo}$"
    paper_row = 11


# ----------------------------------------------------------------------------- repaired routing
@dataclass
class ESMoERoutedConfig(ESMoEConfig):
    route_shrinkage: float = field(default=0.1, metadata={
        "help": "shrinkage s of the shared covariance of the scenario prototypes towards "
                "tr/D I: (1-s) S + s tr(S)/D I (es_moe_routed)"})

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.route_shrinkage <= 1:
            raise ValueError(f"{type(self).__name__}: route_shrinkage must be in [0, 1]")
        if not self.samoe:
            raise ValueError(f"{type(self).__name__}: es_moe_routed routes experts; samoe must be true")


@register_strategy("es_moe_routed", config=ESMoERoutedConfig)
class ESMoERouted(ESMoE):
    """ES-MoE routed by scenario prototypes of frozen prompt embeddings (one deviation).

    The expert scores are ``-1/2`` the squared Mahalanobis distance of the frozen pooled prompt
    embedding to each scenario's prototype (its training prompts' mean; one shared, shrunk
    covariance), i.e. the log-posterior of a shared-covariance Gaussian model, instead of
    QueryEmbedding(h) . K_j.  The prototype of scenario i is taken at the start of experience
    i from its training prompts (frozen features: it cannot drift).  CGED, the injection,
    L_emo, the masking by training time point and top-k + softmax are ES-MoE's."""

    display_name = "ES-MoE (routed)"

    key_gate: ClassVar[bool] = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.router = self.keep("router", PrototypeRouter(self.config.route_shrinkage))

    def before_experience(self, experience) -> None:
        super().before_experience(experience)
        if len(self.router) < len(self.experts):        # (not again after --resume)
            self.router.add(self.frozen_prompt_features([it["text"] for it in experience.dataset]))

    def expert_scores(self, input_ids, attention_mask, pooled) -> torch.Tensor:
        feats = frozen_prompt_embedding(self.model, input_ids, self.prompt_mask(input_ids, attention_mask))
        scores = self.router.log_likelihood(feats, len(self.experts))
        return scores.to(pooled.device, torch.float32)

    def memory_per_scenario(self) -> dict[str, int]:
        """Bytes added per scenario: one LoRA expert, its motion-token rows, one prototype (D
        float64; the shared D x D covariance is fixed, not per scenario)."""
        out = super().memory_per_scenario()
        d = self.model.get_input_embeddings().weight.shape[1]
        return {**out, "key_bytes": 0, "prototype_bytes": d * 8}
