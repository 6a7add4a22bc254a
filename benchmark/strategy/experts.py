"""A LoRA expert bank over peft's LoRA layers, mixed by a gate.

Several named peft LoRA adapters (``lora_A[name]``, ``lora_B[name]``, ``scaling[name]`` in each
``LoraLayer``) act as experts.  While the bank is attached, peft's own LoRA sum is switched off
in those layers and a forward hook adds

    y = base(x) + sum_e w_e * scaling_e * B_e(A_e(dropout(x)))

computed batched: the experts' A (E, r, d_in) and B (E, d_out, r) are stacked and contracted
with ``einsum`` (a per-expert loop only when ranks differ).  Gate weights are per sample
``(B, E)``, per token ``(B, T, E)``, or shared ``(E,)``; they come from :meth:`set_weights` or
from a gate function ``gate(x, layer_name) -> weights`` called in every LoRA layer (needed for
per-token gates during cached generation).  Helpers build hard (one-hot, EPI-style task-id
routing), uniform-sum (O-LoRA-style) and soft top-k gates (ES-MoE, SAPT).
Per-sample weights set with :meth:`set_weights` / :meth:`route` take a folded path
(:meth:`folded_delta`): with a top-k gate each sample's k experts are gathered once per forward
pass for all layers (one gather, frozen experts' factors cached), then two bmm per layer; with
grad off the weights are folded into the B factors and cached per layer, so cached generation
costs two bmm per layer whatever E is.
The dropout of the first expert is applied once to x (shared mask).  The motion-token rows
follow peft's active adapter and are not mixed (see :mod:`benchmark.strategy.lora`).
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

GateFn = Callable[[torch.Tensor, str], torch.Tensor]


def hard_gate(index: torch.Tensor, n_experts: int) -> torch.Tensor:
    """(B,) expert index -> (B, E) one-hot weights."""
    return F.one_hot(index.long(), n_experts).float()


def uniform_gate(batch: int, n_experts: int, device=None) -> torch.Tensor:
    """(B, E) all-ones: the plain sum of experts (O-LoRA-style)."""
    return torch.ones(batch, n_experts, device=device)


def topk_softmax(scores: torch.Tensor, k: int | None = None, mask: torch.Tensor | None = None,
                 temperature: float = 1.0) -> torch.Tensor:
    """Soft gate: softmax over the top-k of ``scores`` (..., E); ``mask`` (..., E) bool marks
    experts allowed to take part (at least one per row).  Others get weight exactly 0."""
    s = scores / temperature
    if mask is not None:
        s = s.masked_fill(~mask.bool(), float("-inf"))
    if k is not None and k < s.shape[-1]:
        kth = s.topk(k, dim=-1).values[..., -1:]
        s = s.masked_fill(s < kth, float("-inf"))
    return torch.softmax(s, dim=-1)


class ExpertBank:
    """Mix the named LoRA adapters ``experts`` of a peft model in every LoRA layer."""

    def __init__(self, model, experts: Sequence[str]):
        from benchmark.strategy.lora import lora_layers

        self.model = model
        self.experts: list[str] = []
        self.layers: dict[str, torch.nn.Module] = lora_layers(model, linear_only=True)
        if not self.layers:
            raise ValueError("the model has no peft LoRA Linear layers; add an adapter first")
        self._weights: torch.Tensor | None = None
        self.gate_fn: GateFn | None = None
        self._hooks: list = []
        self._fold: dict[str, tuple] = {}      # layer -> (weights, A_cat, folded B) at inference
        self._factors: dict[str, tuple] = {}   # layer -> (A list, B list, scales, ranks)
        self._pass: dict = {}                  # per forward pass: support, folds, gathered A/B
        self._rows: dict[str, tuple] = {}      # frozen expert -> (param stamps, flat factors)
        for e in experts:
            self.add_expert(e)

    # ------------------------------------------------------------------ experts
    def add_expert(self, name: str) -> None:
        for lname, layer in self.layers.items():
            if name not in layer.lora_A:
                raise KeyError(f"adapter {name!r} is not in LoRA layer {lname}")
            if name in getattr(layer, "lora_variant", {}):
                raise ValueError(f"adapter {name!r} uses a LoRA variant (e.g. DoRA); not supported")
        self.experts.append(name)
        self._fold.clear()
        self._factors.clear()
        self._pass = {}

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    def parameters(self, name: str) -> list[torch.nn.Parameter]:
        """LoRA A/B parameters of expert ``name`` in every layer."""
        return [p for layer in self.layers.values()
                for p in (*layer.lora_A[name].parameters(), *layer.lora_B[name].parameters())]

    def freeze(self, name: str) -> None:
        for p in self.parameters(name):
            p.requires_grad_(False)

    def unfreeze(self, name: str) -> None:
        for p in self.parameters(name):
            p.requires_grad_(True)

    # ------------------------------------------------------------------ gates
    @property
    def fixed_weights(self) -> torch.Tensor | None:
        """The weights set with :meth:`set_weights` (None: none; checkpointed by the strategy)."""
        return self._weights

    def set_weights(self, weights: torch.Tensor | None) -> None:
        """Fixed gate weights: (E,), (B, E) or (B, T, E); None clears them."""
        if weights is not None and weights.shape[-1] != self.n_experts:
            raise ValueError(f"gate weights have {weights.shape[-1]} experts, bank has {self.n_experts}")
        self._weights = weights
        self._fold.clear()
        self._pass = {}

    @contextlib.contextmanager
    def route(self, weights: torch.Tensor | None = None, gate_fn: GateFn | None = None):
        """Temporarily use ``weights`` or ``gate_fn``."""
        old = (self._weights, self.gate_fn)
        self.set_weights(weights)
        self.gate_fn = gate_fn
        try:
            yield self
        finally:
            self._weights, self.gate_fn = old
            self._fold.clear()
            self._pass = {}

    def _gate(self, x: torch.Tensor, layer_name: str) -> torch.Tensor:
        w = self.gate_fn(x, layer_name) if self.gate_fn is not None else self._weights
        if w is None:
            if any(getattr(m, "gradient_checkpointing", False) for m in self.model.modules()):
                # the backward pass recomputes a layer after route() has restored the gate
                raise RuntimeError("gradient checkpointing does not work with an ExpertBank's "
                                   "per-pass routing (EPI, O-LoRA, SAPT, ES-MoE): run this method "
                                   "without --gradient-checkpointing")
            raise RuntimeError("ExpertBank has no gate: call set_weights(...) or set gate_fn")
        w = w.to(x.device, torch.float32)
        if w.dim() == 1:
            return w.expand(*x.shape[:-1], -1)
        if w.shape[0] != x.shape[0]:
            raise ValueError(f"gate batch {w.shape[0]} != input batch {x.shape[0]}")
        if w.dim() == 2:
            return w.view(w.shape[0], *([1] * (x.dim() - 2)), w.shape[1]).expand(*x.shape[:-1], -1)
        if w.shape[:-1] != x.shape[:-1]:
            raise ValueError(f"per-token gate {tuple(w.shape)} does not match input {tuple(x.shape)}; "
                             "use a gate_fn for cached generation")
        return w

    # ------------------------------------------------------------------ forward
    def delta(self, layer: torch.nn.Module, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """sum_e w_e scaling_e B_e A_e dropout(x): x (..., d_in), w (..., E) -> (..., d_out)."""
        A = [layer.lora_A[e].weight for e in self.experts]
        B = [layer.lora_B[e].weight for e in self.experts]
        scale = torch.tensor([layer.scaling[e] for e in self.experts], device=x.device)
        x = layer.lora_dropout[self.experts[0]](x.to(A[0].dtype))
        w = (w * scale).to(A[0].dtype)
        if len({a.shape[0] for a in A}) == 1:
            h = torch.einsum("...d,erd->...er", x, torch.stack(A))
            return torch.einsum("...er,eor->...o", h * w[..., None], torch.stack(B))
        out = 0
        for e in range(len(A)):      # unequal ranks: loop over experts (not tokens)
            out = out + F.linear(F.linear(x, A[e]), B[e]) * w[..., e:e + 1]
        return out

    def folded_delta(self, layer_name: str, layer: torch.nn.Module, x: torch.Tensor,
                     w: torch.Tensor) -> torch.Tensor:
        """The same sum for a gate fixed per sample, w (B, E), x (B, ..., d_in).

        Only the experts with a non-zero weight take part: if every row has at most k < E
        non-zeros (top-k gates), each sample's k experts are gathered, else all E are used.
        Their A are concatenated (B, R = k r, d_in), their B (B, R, d_out), and
        ``h = x A^T * (w scaling)`` per rank column: two bmm whatever E is.  The gather is done
        once per forward pass for every layer (:meth:`_gathered`).  With grad off (generation)
        the weights are folded into B and the factors cached per layer until the gate changes."""
        if not torch.is_grad_enabled():
            hit = self._fold.get(layer_name)
            if hit is None or hit[0] is not self._weights:
                A, Bt, fold = self._fold_factors(layer_name, layer, w.to(x.device, torch.float32))
                hit = (self._weights, A, Bt * fold[:, :, None])
                self._fold[layer_name] = hit
            A, Bw = hit[1], hit[2]
            x = layer.lora_dropout[self.experts[0]](x.to(A.dtype))
            h = torch.bmm(x.reshape(x.shape[0], -1, x.shape[-1]), A.transpose(1, 2))
            return torch.bmm(h, Bw).reshape(*x.shape[:-1], Bw.shape[2])
        A, Bt, fold = self._fold_factors(layer_name, layer, w.to(x.device, torch.float32))
        x = layer.lora_dropout[self.experts[0]](x.to(A.dtype))
        h = torch.bmm(x.reshape(x.shape[0], -1, x.shape[-1]), A.transpose(1, 2)) * fold[:, None, :]
        return torch.bmm(h, Bt).reshape(*x.shape[:-1], Bt.shape[2])

    def _layer_factors(self, layer_name: str, layer) -> tuple:
        """(A list, B list, scales, ranks) of the bank's experts in ``layer``, looked up once
        per expert set (the adapters' Parameters are stable; cleared by :meth:`add_expert`)."""
        hit = self._factors.get(layer_name)
        if hit is None or hit[0] != self.experts:
            A = [layer.lora_A[e].weight for e in self.experts]
            B = [layer.lora_B[e].weight for e in self.experts]
            hit = (list(self.experts), A, B, tuple(a.shape[0] for a in A))
            self._factors[layer_name] = hit
        scales = tuple(float(layer.scaling[e]) for e in self.experts)     # read live (set_scale)
        return hit[1], hit[2], scales, hit[3]

    def _pass_cache(self) -> dict:
        """What depends only on the gate, shared by every layer of one forward pass."""
        if self._pass.get("weights") is not self._weights:
            self._pass = {"weights": self._weights}
        return self._pass

    def _fold_factors(self, layer_name: str, layer, w: torch.Tensor) -> tuple:
        """(A (B, R, d_in), B^T (B, R, d_out), fold (B, R)) of the experts taking part in
        ``layer``: rank column j of sample b belongs to one expert e and ``fold[b, j]`` is
        w[b, e] * scaling_e."""
        A, B, scales, ranks = self._layer_factors(layer_name, layer)
        cache = self._pass_cache()
        if "idx" not in cache:
            k = int((w != 0).sum(1).max())          # one sync per gate, shared by all layers
            cache["idx"] = w.topk(k, dim=1).indices if k < len(A) else None
        idx, key = cache["idx"], ("fold", scales, ranks, w.device, B[0].dtype)
        if idx is None or len(set(ranks)) > 1:      # all experts
            if key not in cache:
                scale = torch.tensor(scales, device=w.device)
                cache[key] = torch.repeat_interleave(w * scale, torch.tensor(ranks, device=w.device),
                                                     dim=1).to(B[0].dtype)          # (B, R)
            n = w.shape[0]
            return (torch.cat(A)[None].expand(n, -1, -1), torch.cat(B, 1).T[None].expand(n, -1, -1),
                    cache[key])
        if key not in cache:
            scale = torch.tensor(scales, device=w.device)
            cache[key] = (w.gather(1, idx) * scale[idx]).repeat_interleave(ranks[0], 1).to(B[0].dtype)
        A_sel, B_sel = self._gathered(idx, cache)[layer_name]
        return A_sel, B_sel, cache[key]

    def _gathered(self, idx: torch.Tensor, cache: dict) -> dict[str, tuple]:
        """layer -> (A (B, k r, d_in), B^T (B, k r, d_out)) of each sample's k experts ``idx``,
        for every layer whose experts share one rank, with ONE gather per forward pass: each
        expert's factors of all those layers are flattened into one row (frozen experts' rows
        cached until their parameters change), rows stacked (E, P), gathered (B, k, P), split."""
        if "gathered" in cache:
            return cache["gathered"]
        layers = [(n, self._layer_factors(n, m)) for n, m in self.layers.items()]
        layers = [(n, f) for n, f in layers if len(set(f[3])) == 1]
        rows = []
        for e, name in enumerate(self.experts):
            params = [t for _, f in layers for t in (f[0][e], f[1][e])]
            if any(p.requires_grad for p in params):
                rows.append(torch.cat([p.reshape(-1) for p in params]))
                continue
            stamp = tuple((p.data_ptr(), p._version) for p in params)
            hit = self._rows.get(name)
            if hit is None or hit[0] != stamp:
                hit = (stamp, torch.cat([p.detach().reshape(-1) for p in params]))
                self._rows[name] = hit
            rows.append(hit[1])
        n, k = idx.shape
        sizes = [t.numel() for _, f in layers for t in (f[0][0], f[1][0])]
        pieces = F.embedding(idx, torch.stack(rows)).split(sizes, dim=-1)    # (B, k, size) each
        out = {}
        for i, (lname, f) in enumerate(layers):
            (r, d_in), d_out = f[0][0].shape, f[1][0].shape[0]
            A_sel = pieces[2 * i].reshape(n, k * r, d_in)
            B_sel = pieces[2 * i + 1].view(n, k, d_out, r).transpose(2, 3).reshape(n, k * r, d_out)
            out[lname] = (A_sel, B_sel)
        cache["gathered"] = out
        return out

    def _hook(self, layer_name: str):
        def hook(module, args, output):
            if not self.experts:
                return output
            x, w = args[0], self._weights
            if self.gate_fn is None and w is not None and w.dim() == 2 and x.dim() >= 2 \
                    and w.shape == (x.shape[0], self.n_experts):
                return output + self.folded_delta(layer_name, module, x, w).to(output.dtype)
            return output + self.delta(module, x, self._gate(x, layer_name)).to(output.dtype)
        return hook

    def _new_pass(self, module, args) -> None:
        self._pass = {}

    def attach(self) -> "ExpertBank":
        """Switch off peft's own LoRA sum in the bank's layers and add the mixture instead."""
        if self._hooks:
            return self
        grads = {id(p): p.requires_grad for layer in self.layers.values() for p in layer.parameters()}
        for name, layer in self.layers.items():
            layer.enable_adapters(False)
            self._hooks.append(layer.register_forward_hook(self._hook(name)))
        # per-pass caches (weights shared by all layers) end with each forward of the model
        self._hooks.append(self.model.register_forward_pre_hook(self._new_pass))
        for layer in self.layers.values():       # enable_adapters(False) froze everything: restore
            for p in layer.parameters():
                p.requires_grad_(grads[id(p)])
        return self

    def detach(self) -> None:
        """Remove the hooks; peft's normal adapter forward is back."""
        grads = {id(p): p.requires_grad for layer in self.layers.values() for p in layer.parameters()}
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        for layer in self.layers.values():
            layer.enable_adapters(True)
            for p in layer.parameters():
                p.requires_grad_(grads[id(p)])


# ----------------------------------------------------------------------------- task-free routers
# Two routers that pick an expert from *frozen* features of the prompt (they never train with the
# LM, so a scenario's routing cannot drift after its experience).  Both are plain objects with
# ``state_dict``/``load_state_dict``: declare them with ``MotionLMStrategy.keep`` to checkpoint.

@torch.no_grad()
def frozen_prompt_embedding(model, input_ids: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
    """(B, d) float64 on the CPU: the mean over the prompt tokens (``prompt_mask`` (B, L) bool)
    of the LM's input token embeddings.  The text rows of the embedding never train (only the
    motion-token rows do), so this is a fixed bag-of-words feature of the caption."""
    x = model.get_input_embeddings()(input_ids).double()
    m = prompt_mask.to(x.dtype).unsqueeze(-1)
    return ((x * m).sum(1) / m.sum(1).clamp_min(1.0)).cpu()


class PrototypeRouter:
    """One prototype (mean feature) per expert and one covariance shared by all, the pooled
    within-expert scatter (as EPI / linear discriminant analysis), shrunk towards a scaled
    identity ``(1 - s) S + s tr(S)/D I``.  :meth:`log_likelihood` is the Gaussian
    log-likelihood up to a constant, ``-1/2 (x - mu_k)^T S^-1 (x - mu_k)``: its softmax is the
    posterior over experts with equal priors.  Stores D floats per expert + one D x D matrix."""

    def __init__(self, shrinkage: float = 0.1):
        if not 0 <= shrinkage <= 1:
            raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
        self.shrinkage = float(shrinkage)
        self.means: list[torch.Tensor] = []
        self.scatter: torch.Tensor | None = None
        self.n = 0
        self._precision: torch.Tensor | None = None
        self._whiten: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.means)

    def add(self, features) -> None:
        """Add an expert from the (N, D) features of its training prompts (N >= 1)."""
        f = torch.as_tensor(features, dtype=torch.float64).cpu()
        if f.dim() != 2 or len(f) == 0 or not torch.isfinite(f).all():
            raise ValueError(f"features must be a finite (N >= 1, D) array, got {tuple(f.shape)}")
        c = f - f.mean(0)
        self.means.append(f.mean(0))
        self.scatter = c.T @ c if self.scatter is None else self.scatter + c.T @ c
        self.n += len(f)
        self._precision = self._whiten = None

    def precision(self) -> torch.Tensor:
        if self._precision is None:
            d = self.scatter.shape[0]
            cov = self.scatter / max(self.n - len(self.means), 1)
            s = self.shrinkage
            cov = (1 - s) * cov + s * (torch.trace(cov) / d + 1e-12) * torch.eye(d, dtype=cov.dtype)
            self._precision = torch.linalg.pinv(cov, hermitian=True)
        return self._precision

    def log_likelihood(self, x: torch.Tensor, n_experts: int | None = None) -> torch.Tensor:
        """(B, D) -> (B, E) float64 ``-1/2`` squared Mahalanobis distance to each prototype (the
        first ``n_experts``)."""
        if not self.means:
            raise RuntimeError("PrototypeRouter has no expert yet")
        if self._whiten is None:       # S^-1 = W W^T (eigh of the PSD precision): distances
            vals, vecs = torch.linalg.eigh(self.precision())      # are Euclidean after x W
            self._whiten = vecs * vals.clamp_min(0).sqrt()
            self._white_means = torch.stack(self.means) @ self._whiten
        mu = self._white_means[: n_experts or len(self.means)]
        xw = x.double().cpu() @ self._whiten                                # (B, D)
        return -0.5 * (xw[:, None, :] - mu[None]).pow(2).sum(-1)

    def state_dict(self) -> dict:
        return {"shrinkage": self.shrinkage, "means": list(self.means), "scatter": self.scatter,
                "n": self.n}

    def load_state_dict(self, state: dict) -> None:
        self.shrinkage = float(state["shrinkage"])
        self.means = [m.double().cpu() for m in state["means"]]
        self.scatter = None if state["scatter"] is None else state["scatter"].double().cpu()
        self.n = int(state["n"])
        self._precision = self._whiten = None


class AutoencoderSelector:
    """Expert Gate's selector (Aljundi et al., CVPR 2017; the auto-selector of MoE-Adapters4CL):
    one small undercomplete autoencoder per expert, trained on the frozen features of that
    expert's training data only.  A prompt goes to the expert whose autoencoder reconstructs it
    best; the relevance is ``softmax(-error / temperature)`` (Expert Gate: t = 2).

    Each autoencoder standardises its input with its own data's mean and std, then
    ``Linear(D, code) -> ReLU -> Linear(code, D)``, trained with the mean squared error (Adam,
    full batch).  Errors are the per-prompt MSE in that autoencoder's standardised space."""

    def __init__(self, code: int = 16, epochs: int = 300, lr: float = 1e-2,
                 temperature: float = 2.0, seed: int = 0):
        if min(code, epochs) < 1 or lr <= 0 or temperature <= 0:
            raise ValueError("code and epochs must be >= 1, lr and temperature > 0")
        self.code, self.epochs, self.lr = int(code), int(epochs), float(lr)
        self.temperature, self.seed = float(temperature), int(seed)
        self.autoencoders: list[dict] = []     # {"mean", "std", "enc_w", "enc_b", "dec_w", "dec_b"}

    def __len__(self) -> int:
        return len(self.autoencoders)

    @staticmethod
    def _net(d: int, code: int) -> torch.nn.Sequential:
        return torch.nn.Sequential(torch.nn.Linear(d, code), torch.nn.ReLU(), torch.nn.Linear(code, d))

    def _load(self, ae: dict) -> torch.nn.Sequential:
        net = self._net(ae["mean"].shape[0], ae["enc_w"].shape[0]).double()
        with torch.no_grad():
            for p, k in zip(net.parameters(), ("enc_w", "enc_b", "dec_w", "dec_b")):
                p.copy_(ae[k])
        return net

    def add(self, features) -> float:
        """Train the next expert's autoencoder on its (N, D) features; returns its final
        training error."""
        f = torch.as_tensor(features, dtype=torch.float64).cpu()
        if f.dim() != 2 or len(f) == 0 or not torch.isfinite(f).all():
            raise ValueError(f"features must be a finite (N >= 1, D) array, got {tuple(f.shape)}")
        mean, std = f.mean(0), f.std(0, unbiased=False).clamp_min(1e-6)
        z = (f - mean) / std
        gen = torch.Generator().manual_seed(self.seed * 1000 + len(self.autoencoders))
        net = self._net(f.shape[1], self.code).double()
        with torch.no_grad():
            for p in net.parameters():
                p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1)
                        / math.sqrt(p.shape[-1]))
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.epochs):
                opt.zero_grad()
                loss = F.mse_loss(net(z), z)
                loss.backward()
                opt.step()
        w = [p.detach().clone() for p in net.parameters()]
        self.autoencoders.append({"mean": mean, "std": std, "enc_w": w[0], "enc_b": w[1],
                                  "dec_w": w[2], "dec_b": w[3]})
        return float(loss.detach())

    @torch.no_grad()
    def errors(self, x: torch.Tensor, n_experts: int | None = None) -> torch.Tensor:
        """(B, D) -> (B, E) reconstruction error of each prompt under each autoencoder."""
        if not self.autoencoders:
            raise RuntimeError("AutoencoderSelector has no expert yet")
        x = torch.as_tensor(x, dtype=torch.float64).cpu()
        out = []
        for ae in self.autoencoders[: n_experts or len(self.autoencoders)]:
            z = (x - ae["mean"]) / ae["std"]
            out.append((self._load(ae)(z) - z).pow(2).mean(-1))
        return torch.stack(out, 1)

    def relevance(self, x: torch.Tensor, n_experts: int | None = None) -> torch.Tensor:
        """(B, E) softmax(-error / temperature)."""
        return torch.softmax(-self.errors(x, n_experts) / self.temperature, -1)

    def state_dict(self) -> dict:
        return {"config": [self.code, self.epochs, self.lr, self.temperature, self.seed],
                "autoencoders": [dict(ae) for ae in self.autoencoders]}

    def load_state_dict(self, state: dict) -> None:
        self.code, self.epochs, self.lr, self.temperature, self.seed = state["config"]
        self.autoencoders = [{k: v.double().cpu() for k, v in ae.items()}
                             for ae in state["autoencoders"]]
