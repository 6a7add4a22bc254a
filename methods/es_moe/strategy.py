"""ES-MoE: Emotion-Transferable and Scenario-Adapted Mixture of Experts (Wang et al., "Towards
Closed-Loop Embodied Empathy Evolution: Probing LLM-Centric Lifelong Empathic Motion Generation
in Unseen Scenarios", AAAI; Section "Approach", Algorithm 1, Eq. 4, L = L_llm + lambda L_emo).

Per batch: X = the LM's input token embeddings (B, T, d); on the prompt tokens CGED gives the
emotion-highlighted h (B, T, d) and its masked mean (B, d); the emotion head on it gives L_emo;
h is added to the prompt embeddings through a zero-initialised tanh gate (the LM starts from its
own input and learns how much of h to use); the pooled h drives the expert gate (Eq. 4) whose
per-sample weights (B, E) mix the LoRA experts in the shared :class:`ExpertBank`.
A routing loss (our addition, ``lambda_route``) trains the gate toward the current expert on
the current prompts and toward expert j on scenario j's anchors (K-means centres of its pooled
h): with L_llm alone the gate collapses onto the old expert (docs/es_moe.md).
At generation the gate and the injection are computed once per prompt and held fixed.
Ablations are switches (``cged``, ``samoe``, ``lambda_emo``) registered under their own names.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark.io import DataError
from benchmark.strategy import MotionLMStrategy, Route, lora, register_strategy
from benchmark.strategy.config import StrategyConfig
from methods.es_moe.cged import CGED, masked_mean, rms, rms_normalize
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
    gate_norm: bool = field(default=True, metadata={
        "help": "gate query = SAPT's bias-free down/up projection + SiLU + LayerNorm (False: the "
                "earlier Linear-SiLU-Linear with biases, routing nearly prompt-independent)"})
    force_current: bool = field(default=True, metadata={
        "help": "the expert being trained is always among the top-k (so it always gets gradient)"})
    dict_refit: bool = field(default=False, metadata={
        "help": "refit the K-means dictionary at every experience (default: K-means initialises "
                "it once, on the first experience, as the paper says)"})
    cged_input_norm: bool = field(default=True, metadata={
        "help": "CGED (and the dictionary) read X / RMS(X) per token instead of the raw "
                "embeddings (std ~0.02, swamped by the maps' biases)"})
    inject_norm: bool = field(default=True, metadata={
        "help": "h is brought to the embedding's per-token RMS before tanh(a) * h is added "
                "(False: raw h, ~4-5x the embedding RMS)"})
    lambda_route: float = field(default=1.0, metadata={
        "help": "weight of the routing loss: cross-entropy of the gate (Eq. 4 scores, no "
                "masking, no top-k) toward the current expert on the current scenario's "
                "prompts and toward expert j on scenario j's route anchors (our addition: "
                "with L_llm alone the gate collapses onto the old expert; 0 = off)"})
    gate_center: bool = field(default=True, metadata={
        "help": "the gate reads pooled h minus its running mean over all training batches, "
                "divided by the running RMS of the centred input (without it a component "
                "shared by every prompt dominates h and the query is nearly the same for all)"})
    route_anchors: int = field(default=4, metadata={
        "help": "K-means centres of the pooled h of each finished scenario's training "
                "prompts kept for the routing loss (d floats each; no prompt is stored; "
                "0 = none)"})
    diag_prompts: int = field(default=32, metadata={
        "help": "prompts per experience kept for the per-experience diagnostics only (gate "
                "entropy, usage per subset...; never trained on; 0 = no diagnostics)"})

    def __post_init__(self):
        super().__post_init__()
        checks = [(self.lambda_emo >= 0, "lambda_emo must be >= 0"),
                  (0 <= self.mask_p0 <= 1, "mask_p0 must be in [0, 1]"),
                  (self.top_k >= 0, "top_k must be >= 0"),
                  (self.diag_prompts >= 0, "diag_prompts must be >= 0"),
                  (self.lambda_route >= 0, "lambda_route must be >= 0"),
                  (self.route_anchors >= 0, "route_anchors must be >= 0"),
                  (self.d_key >= self.max_experts, "d_key must be >= max_experts"),
                  (self.n_emotions >= 0, "n_emotions must be >= 0 (0 = from the corpus)"),
                  (min(self.n_dict, self.d_attn, self.d_ffn, self.emo_hidden,
                       self.max_experts, self.d_down) >= 1, "sizes must be >= 1")]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"{type(self).__name__}: {msg}")


@register_strategy("es_moe", config=ESMoEConfig)
class ESMoE(MotionLMStrategy):
    """ES-MoE: CGED emotion decoupling + gated per-scenario LoRA experts."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        c = self.config
        d = self.motion_lm.model.get_input_embeddings().weight.shape[1]
        with self.seeded():
            if c.cged:
                n_emo = c.n_emotions or len(self.label_spaces.get("emotions", ())) or 7
                self.method_modules["cged"] = CGED(d, c.d_attn, c.n_dict, c.d_ffn, n_emo,
                                                   c.emo_hidden, seed=self.seed)
            if c.samoe:
                self.method_modules["gate"] = ExpertGate(d, c.d_key, c.d_down, c.max_experts,
                                                         norm=c.gate_norm, center=c.gate_center)
        # declared state (checkpointed): the masking generator and the diagnostics
        self._mask_gen = self.keep("_mask_gen", torch.Generator().manual_seed(self.seed))
        self.diag_items: list[dict] = self.keep("diag_items", [])   # {"subset", "texts", "emotions"}
        self.diagnostics: list[dict] = self.keep("diagnostics", [])  # see :meth:`diagnose`
        # per finished scenario j: (route_anchors, d) centres of its pooled h (routing loss)
        self.anchors: list[torch.Tensor] = self.keep("anchors", [])
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
            for j, key in enumerate(self.method_modules["gate"].keys):
                key.requires_grad_(j == i)                      # only the new key trains
        elif "shared" not in self.motion_lm.adapters:
            self.add_lora("shared")
        if c.cged and (c.dict_refit or not self.method_modules["cged"].fitted):
            self.method_modules["cged"].fit_dictionary(self.prompt_features(experience))

    def after_experience(self, experience) -> None:
        if self.config.samoe:
            lora.freeze_adapter(self.motion_lm, self.experts[-1])
            self.method_modules["gate"].keys[len(self.experts) - 1].requires_grad_(False)
            if self.config.lambda_route > 0 and self.config.route_anchors > 0:
                self.anchors.append(self.route_anchor_centres(experience))
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
        """Per-experience diagnostics on the kept prompts of every subset seen so far (eval
        mode, no masking): gate entropy (nats) and the fraction of prompts whose top expert
        is the current one (on the current subset), the mean gate weight of every expert on
        every subset, per subset j the fraction routed to its own expert j (``route_own``), tanh(alpha), ||injection|| / ||X|| and ||h|| / ||X|| on the prompt
        tokens, and the emotion head's accuracy on the current subset's kept prompts."""
        c = self.config
        out: dict = {"experience": self.exp_counter + 1, "usage": {}}
        with self.eval_mode(self.model, self.method_modules):
            for j, d in enumerate(self.diag_items):
                b = self.motion_lm.generation_inputs(d["texts"])
                ids, am = b["input_ids"].to(self.device), b["attention_mask"].to(self.device)
                x, pooled, h = self.encode(ids, am)
                current = j == len(self.diag_items) - 1
                if c.samoe:
                    w = self.gate_weights(pooled, train=False)
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

    # ------------------------------------------------------------------ routing loss
    @torch.no_grad()
    def route_anchor_centres(self, experience, chunk: int = 256) -> torch.Tensor:
        """(<= route_anchors, d) K-means centres of the pooled h (the gate's input) of the
        experience's training prompts, computed once at its end (eval mode)."""
        from sklearn.cluster import KMeans

        texts = [item["text"] for item in experience.dataset]
        pooled = []
        with self.eval_mode(self.model, self.method_modules):
            for s in range(0, len(texts), chunk):
                b = self.motion_lm.generation_inputs(texts[s: s + chunk])
                _, p, _ = self.encode(b["input_ids"].to(self.device),
                                      b["attention_mask"].to(self.device))
                pooled.append(p.float().cpu())
        x = torch.cat(pooled).numpy().astype(np.float64)
        k = min(self.config.route_anchors, len(np.unique(x.round(6), axis=0)))
        km = KMeans(n_clusters=k, random_state=self.seed, n_init=4).fit(x)
        return torch.as_tensor(km.cluster_centers_, dtype=torch.float32, device=self.device)

    def route_loss(self, pooled: torch.Tensor) -> torch.Tensor | None:
        """Cross-entropy of the gate scores (all trained experts, unmasked) toward the
        current expert on this batch's pooled h (detached: only the gate learns from it)
        and toward expert j on scenario j's anchors; the mean over scenarios (each seen
        scenario weighs the same).  None with one expert (the loss is 0 there)."""
        n = len(self.experts)
        if n < 2:
            return None
        gate = self.method_modules["gate"]
        groups = [(pooled.detach().float(), n - 1)]
        groups += [(a, j) for j, a in enumerate(self.anchors[: n - 1])]
        rows = torch.cat([g for g, _ in groups])
        target = torch.cat([torch.full((len(g),), j, dtype=torch.long, device=rows.device)
                            for g, j in groups])
        ce = torch.nn.functional.cross_entropy(gate.scores(rows, n), target, reduction="none")
        sizes = torch.tensor([len(g) for g, _ in groups], device=rows.device, dtype=ce.dtype)
        return (ce / sizes.repeat_interleave(sizes.long())).sum() / len(groups)

    # ------------------------------------------------------------------ CGED inputs
    @torch.no_grad()
    def prompt_features(self, experience, chunk: int = 256) -> np.ndarray:
        """(N, d) mean-pooled frozen token embeddings of the experience's training prompts
        (each token RMS-normalised first with ``cged_input_norm``: CGED's input space)."""
        texts = [item["text"] for item in experience.dataset]
        emb = self.model.get_input_embeddings()
        dev = emb.weight.device
        out = []
        for s in range(0, len(texts), chunk):
            batch = self.motion_lm.generation_inputs(texts[s: s + chunk])
            ids, am = batch["input_ids"].to(dev), batch["attention_mask"].to(dev)
            x = emb(ids).float()
            x = rms_normalize(x) if self.config.cged_input_norm else x
            out.append(masked_mean(x, self.prompt_mask(ids, am)).cpu())
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
        h = cged(rms_normalize(xs) if self.config.cged_input_norm else xs, ms)
        if self.config.inject_h:
            scale = rms(xs) if self.config.inject_norm else None
            x = torch.cat([xs + cged.inject(h, ms, scale).to(x.dtype), x[:, span:]], 1)
        return x, masked_mean(h, ms), h

    def gate_weights(self, pooled: torch.Tensor, train: bool) -> torch.Tensor:
        """(B, d) -> (B, E) weights over the trained experts (masked + top-k when training)."""
        n, c = len(self.experts), self.config
        mask = None
        if train and n > 1 and c.mask_p0 > 0:
            p = mask_probability(c.mask_p0, self._progress())
            mask = self.method_modules["gate"].random_mask(len(pooled), n, p, self._mask_gen)
            mask = mask.to(pooled.device)
        force = n - 1 if train and c.force_current else None
        w = self.method_modules["gate"](pooled, n, top_k=c.top_k or None, mask=mask, force=force)
        if train:
            self.last_weights = w.detach()
        return w

    def _progress(self) -> float:
        return getattr(self, "_steps", 0) / self.planned_steps()

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
        if self.config.samoe:
            self.method_modules["gate"].observe(pooled)
        w = self.gate_weights(pooled, train=True) if self.config.samoe else None
        with self.routing(w):
            out = self.model(inputs_embeds=x, attention_mask=b["attention_mask"], labels=b["labels"])
        if emo is not None:
            out["emo_loss"] = emo           # read by loss_terms
        if self.config.samoe and self.config.lambda_route > 0:
            route = self.route_loss(pooled)
            if route is not None:
                out["route_loss"] = route
        return out

    def loss_terms(self, batch: dict, outputs) -> dict[str, torch.Tensor]:
        """lambda * L_emo (none when CGED is off or lambda = 0), logged as ``emo_loss``, and
        lambda_route * the routing loss (from the second expert on), logged as ``route_loss``."""
        terms = {}
        if outputs.get("emo_loss") is not None:
            terms["emo_loss"] = self.config.lambda_emo * outputs["emo_loss"]
        if outputs.get("route_loss") is not None:
            terms["route_loss"] = self.config.lambda_route * outputs["route_loss"]
        return terms

    # ------------------------------------------------------------------ generation
    def route(self, batch):
        """Gate + injection computed once per prompt batch from its h, held fixed while sampling
        (before the first experience: the untrained backbone, as for every method)."""
        if not self.motion_lm.adapters:
            return None
        x, pooled, _ = self.encode(batch["input_ids"], batch["attention_mask"])
        w = self.gate_weights(pooled, train=False) if self.config.samoe else None
        return Route(weights=w, inputs_embeds=x)

    def memory_per_scenario(self) -> dict[str, int]:
        """Bytes added per scenario: one LoRA expert (A, B), its key, its motion-token rows."""
        name = self.experts[-1] if self.experts else "shared"
        key = self.method_modules["gate"].keys[0] if self.config.samoe else None
        key_b = key.numel() * key.element_size() if key is not None else 0
        return {**lora.adapter_bytes_split(self.motion_lm, name), "key_bytes": key_b}


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
    """ES-MoE w/o CGED (Table 2 ablation): the gate reads the raw embeddings X."""


@register_strategy("es_moe_no_samoe", config=ESMoENoSAMoEConfig)
class ESMoENoSAMoE(ESMoE):
    """ES-MoE w/o SAMoE (Table 2 ablation): one LoRA shared by all scenarios."""


@register_strategy("es_moe_no_emo_loss", config=ESMoENoEmoConfig)
class ESMoENoEmoLoss(ESMoE):
    """ES-MoE w/o L_emo (Table 2 ablation): lambda = 0."""
