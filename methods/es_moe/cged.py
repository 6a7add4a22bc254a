"""Causal-Guided Emotion Decoupling (CGED) block of ES-MoE (Wang et al., "Towards Closed-Loop
Embodied Empathy Evolution", AAAI; Section "Causal-Guided Emotion Decoupling Block").

The front-door adjustment P(Y|do(X)) ~ Softmax(phi(s_x, s_m)) (Eq. 2, NWGM approximation) is
implemented with two attentions over the LM's input token embeddings X (B, T, d):

* self-sampling  s_x = softmax(Q_m K_m^T / sqrt(a)) V_m,  Q_m = f(X), K_m = X W_k, V_m = X W_v
  (attention over the sample's own prompt tokens);
* cross-sampling s_m = softmax(Q_c K_g^T / sqrt(a)) V_g,  Q_c = g(X), K_g = D W_kg, V_g = D W_vg
  where D (K, d) is a global dictionary of K-means centres of training-set features;
* h = W [FFN1(s_x) ; FFN2(s_m)] + b, the emotion-highlighted input (B, T, d) (values, FFNs
  in a small width a; W maps 2a -> d, so the block costs O(d a) parameters, not O(d^2));
* an emotion classifier (FC + ReLU layers, softmax in the cross-entropy) on the masked mean of h;
* :meth:`CGED.inject`: tanh(alpha) * h on the prompt tokens (alpha starts at 0), what the
  strategy adds to the LM's input embeddings (``scale``: h brought to a given per-token RMS
  first; not used by ES-MoE, which follows the paper and adds h as it is).
* :func:`rms_normalize`: X / RMS(X) per token (a weightless RMSNorm); a helper, not used by
  ES-MoE (CGED reads the raw input embeddings X, as the paper has it).

The dictionary is a buffer (not trained by gradient).  :meth:`CGED.fit_dictionary` fits it with
scikit-learn ``KMeans`` (ES-MoE calls it once, on the first experience's training prompts: the
paper's "K-means ... to initialize"); a later call would refit K centres on the old centres
(weighted by their cluster sizes) together with the new features.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmark.io import DataError


def rms(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(..., d) -> (..., 1) root mean square over the last axis."""
    return x.float().pow(2).mean(-1, keepdim=True).add(eps).sqrt()


def rms_normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x / RMS(x) over the last axis (RMSNorm without a weight)."""
    return x.float() / rms(x, eps)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, d), (B, T) bool -> (B, d) mean over the True positions (zeros if none)."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class GroupedLinear(nn.Module):
    """``groups`` independent linear maps in one batched matmul, groups first:
    x (groups, N, d_in) -> (groups, N, d_out), group g through its own (W_g, b_g).
    Initialised like ``nn.Linear`` (uniform in +-1/sqrt(d_in)), so it is G ``nn.Linear`` s
    stored side by side (CGED's two query networks and its two FFNs)."""

    def __init__(self, groups: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(groups, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class CGED(nn.Module):
    """CGED block on token embeddings.

    Args: ``d_model`` (d) LM hidden size; ``d_attn`` (a) query/key/value size; ``n_dict`` (K)
    dictionary entries; ``d_ffn`` hidden size of FFN1/FFN2; ``n_emotions`` classes;
    ``emo_hidden`` width of the classifier's hidden layers (``emo_layers`` of them).

    The paper's small maps that read the same input are stored fused, one matmul each (the
    block is a few dozen tiny ops per step, so their count is its cost):

    * ``proj_x``: the four maps of X, columns ``[f1 | g1 | W_k | W_v]`` (f1, g1 = first
      layers of the query networks f and g; W_k, W_v = K_m, V_m of self-sampling);
    * ``query2``: the second layers of f and g (two groups);
    * ``proj_dict``: ``[W_kg | W_vg]`` of the dictionary (K_g, V_g of cross-sampling);
    * ``ffn_in`` / ``ffn_out``: FFN1 (group 0, on s_x) and FFN2 (group 1, on s_m);
    * ``out``: W, b on ``[FFN1(s_x) ; FFN2(s_m)]``.
    """

    def __init__(self, d_model: int, d_attn: int = 64, n_dict: int = 16, d_ffn: int = 128,
                 n_emotions: int = 7, emo_hidden: int = 64, emo_layers: int = 2, seed: int = 0):
        super().__init__()
        if min(d_model, d_attn, n_dict, d_ffn, n_emotions, emo_hidden, emo_layers) < 1:
            raise ValueError("CGED sizes must all be >= 1")
        self.d_model, self.d_attn, self.n_dict, self.seed = d_model, d_attn, n_dict, seed
        self.proj_x = nn.Linear(d_model, 4 * d_attn)       # [f1 | g1 | W_k | W_v]
        self.query2 = GroupedLinear(2, d_attn, d_attn)      # second layers of f, g
        self.proj_dict = nn.Linear(d_model, 2 * d_attn)     # [W_kg | W_vg]
        self.ffn_in = GroupedLinear(2, d_attn, d_ffn)       # FFN1, FFN2 first layers
        self.ffn_out = GroupedLinear(2, d_ffn, d_attn)      # FFN1, FFN2 second layers
        self.out = nn.Linear(2 * d_attn, d_model)           # W, b: back to the LM's width
        layers, width = [], d_model
        for _ in range(emo_layers):
            layers += [nn.Linear(width, emo_hidden), nn.ReLU()]
            width = emo_hidden
        self.emotion_head = nn.Sequential(*layers, nn.Linear(width, n_emotions))
        self.inject_gate = nn.Parameter(torch.zeros(()))  # tanh gate of h into the LM input
        self.register_buffer("dictionary", torch.zeros(0, d_model))   # (K, d) K-means centres
        self.register_buffer("counts", torch.zeros(0))                # (K,) cluster sizes

    # ------------------------------------------------------------------ dictionary
    @property
    def fitted(self) -> bool:
        return self.dictionary.shape[0] > 0

    def fit_dictionary(self, features: np.ndarray | torch.Tensor) -> None:
        """Fit / refit the K-means dictionary on ``features`` (N, d) (+ the current centres
        weighted by their counts).  K is ``min(n_dict, number of points)``."""
        from sklearn.cluster import KMeans

        x = torch.as_tensor(features).detach().cpu().double().numpy()
        if x.ndim != 2 or x.shape[1] != self.d_model or len(x) == 0 or not np.isfinite(x).all():
            raise DataError(None, f"CGED dictionary features must be a finite (N>0, {self.d_model}) "
                            f"array, got shape {tuple(x.shape)}", "pass mean-pooled prompt embeddings")
        w = np.ones(len(x))
        if self.fitted:
            x = np.concatenate([self.dictionary.cpu().double().numpy(), x])
            w = np.concatenate([self.counts.cpu().double().numpy(), w])
        k = min(self.n_dict, len(np.unique(x.round(12), axis=0)))
        km = KMeans(n_clusters=k, random_state=self.seed, n_init=4).fit(x, sample_weight=w)
        sizes = np.bincount(km.labels_, weights=w, minlength=k)
        dev = self.out.weight.device
        self.dictionary = torch.as_tensor(km.cluster_centers_, dtype=torch.float32, device=dev)
        self.counts = torch.as_tensor(sizes, dtype=torch.float32, device=dev)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("dictionary", "counts"):       # the dictionary size is data-dependent
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, d) token embeddings, mask (B, T) bool (prompt tokens) -> h (B, T, d).
        Rows of samples without any prompt token are finite but meaningless (every consumer
        masks them: :func:`masked_mean`, :meth:`inject`)."""
        if not self.fitted:
            raise RuntimeError("CGED dictionary is empty: call fit_dictionary(features) first")
        (b, t, _), a = x.shape, self.d_attn
        mask = mask.bool()
        hidden, k_m, v_m = self.proj_x(x.float()).split([2 * a, a, a], -1)
        q = self.query2(F.silu(hidden).view(b * t, 2, a).transpose(0, 1))     # (2, B T, a)
        keep = mask | ~mask.any(1, keepdim=True)                        # no all-masked rows
        s_x = F.scaled_dot_product_attention(q[0].view(b, t, a), k_m, v_m,
                                             attn_mask=keep[:, None, :])  # (B, T, a)
        k_g, v_g = self.proj_dict(self.dictionary).chunk(2, -1)         # (K, a) each
        s_m = F.scaled_dot_product_attention(q[1:], k_g[None], v_g[None])  # (1, B T, a)
        s = torch.cat([s_x.view(1, b * t, a), s_m])                     # (2, B T, a)
        y = self.ffn_out(F.silu(self.ffn_in(s)))                        # [FFN1(s_x); FFN2(s_m)]
        return self.out(y.transpose(0, 1).reshape(b, t, 2 * a))

    def inject(self, h: torch.Tensor, mask: torch.Tensor,
               scale: torch.Tensor | None = None) -> torch.Tensor:
        """What is added to the prompt embeddings: tanh(a) * h on prompt tokens (B, T, d);
        a starts at 0 so the LM first sees its own input unchanged.  ``scale`` (B, T, 1): h
        is normalised to that RMS per token first (``||injection|| <= |tanh a| ||X||``)."""
        if scale is not None:
            h = rms_normalize(h) * scale.to(torch.float32)
        return torch.tanh(self.inject_gate) * h * mask.to(h.dtype).unsqueeze(-1)

    def emotion_logits(self, h_pooled: torch.Tensor) -> torch.Tensor:
        """(B, d) pooled h -> (B, n_emotions) logits."""
        return self.emotion_head(h_pooled)

    def emotion_loss(self, h_pooled: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """L_emo = cross-entropy of the classifier on pooled h against labels (B,) int."""
        return F.cross_entropy(self.emotion_logits(h_pooled), emotion.long().to(h_pooled.device))
