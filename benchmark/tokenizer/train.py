"""Training of the VQ-VAE tokenizer (T2M-GPT recipe) and its reconstruction report.

``fit_vqvae`` is the core loop on a list of raw ``(T, F)`` arrays + Mean/Std (usable with synthetic
data); ``train_tokenizer`` wraps it for a ``Corpus``: trains on the corpus train part, reports on its
test part and writes the tokenizer folder atomically.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.io import DataError, atomic_dir, provenance
from benchmark.seed import seed_everything
from benchmark.tokenizer.config import Preset, TrainConfig, get_preset
from benchmark.tokenizer.quantizer import perplexity_of
from benchmark.tokenizer.tokenizer import MotionTokenizer

JOINT_DIMS = slice(4, 67)   # local joint positions (21 x 3) in the 263-dim HumanML3D layout


class WindowSampler:
    """Random fixed-length windows from normalised motions, gathered in one indexing op.

    Motions shorter than ``window`` frames are skipped.  ``sample(b)`` -> ``(b, window, F)``: a motion
    drawn uniformly, then a uniform start offset (as T2M-GPT's VQ data loader).
    """

    def __init__(self, motions: Sequence[np.ndarray], window: int, device: torch.device,
                 generator: torch.Generator):
        keep = [m for m in motions if len(m) >= window]
        if not keep:
            longest = max((len(m) for m in motions), default=0)
            raise DataError(None, f"no training motion has >= {window} frames (longest: {longest})",
                            "use a smaller window (TrainConfig.window) or longer motions")
        lengths = torch.tensor([len(m) for m in keep])
        self.starts = torch.cumsum(lengths, 0) - lengths
        self.span = lengths - window + 1                       # valid start offsets per motion
        self.data = torch.from_numpy(np.concatenate(keep)).to(device)
        self.window, self.gen, self.device = window, generator, device
        self.n_motions = len(keep)

    def sample(self, batch: int) -> torch.Tensor:
        m = torch.randint(self.n_motions, (batch,), generator=self.gen)
        off = (torch.rand(batch, generator=self.gen) * self.span[m]).long()
        idx = (self.starts[m] + off)[:, None] + torch.arange(self.window)[None, :]
        return self.data[idx.to(self.device)]


def lr_factor(it: int, cfg: TrainConfig) -> float:
    """Linear warm-up then step decay by ``gamma`` at each milestone (fractions of iters)."""
    warm = min(1.0, (it + 1) / cfg.warmup) if cfg.warmup else 1.0
    return warm * cfg.gamma ** sum(it >= round(m * cfg.iters) for m in cfg.milestones)


def vq_losses(recon: torch.Tensor, target: torch.Tensor, commit: torch.Tensor,
              cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Loss terms on normalised (B, T, F) windows: rec, aux (joints or velocity), commit, total."""
    rec = F.smooth_l1_loss(recon, target)
    if cfg.aux_mode == "joints":
        aux = F.smooth_l1_loss(recon[..., JOINT_DIMS], target[..., JOINT_DIMS])
    elif cfg.aux_mode == "velocity":
        aux = F.smooth_l1_loss(recon.diff(dim=1), target.diff(dim=1))
    else:
        aux = torch.zeros((), device=recon.device)
    total = rec + cfg.aux_weight * aux + cfg.commit * commit
    return {"loss": total, "rec": rec, "aux": aux, "commit": commit}


def fit_vqvae(motions: Sequence[np.ndarray], mean: np.ndarray, std: np.ndarray, preset: Preset,
              seed: int = 0, device: str | torch.device = "cpu", verbose: bool = False,
              corpus_hash: str | None = None) -> tuple[MotionTokenizer, list[dict]]:
    """Train a tokenizer on raw motions [(T_i, F)]; returns it (eval mode) and the loss history."""
    cfg = preset.train
    if cfg.aux_mode == "joints" and preset.model.feature_dim < JOINT_DIMS.stop:
        raise ValueError("aux_mode 'joints' needs the 263-dim HumanML3D layout; use 'velocity'")
    device = torch.device(device)
    seed_everything(seed)
    tok = MotionTokenizer(preset.model, mean, std, preset=preset.name, train_config=cfg,
                          corpus_hash=corpus_hash, seed=seed).to(device)
    mean_n, std_n = tok.mean.cpu().numpy(), tok.std.cpu().numpy()
    normed = [(tok._check_features(m, i) - mean_n) / std_n for i, m in enumerate(motions)]
    sampler = WindowSampler(normed, cfg.window, device, torch.Generator().manual_seed(seed))
    model = tok.vqvae.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_factor(it, cfg))
    history, acc, t0 = [], {}, time.perf_counter()
    from benchmark import progress

    bar = progress.bar(cfg.iters, "tokenizer", unit="it")
    for it in range(cfg.iters):
        bar.update(1)
        x = sampler.sample(cfg.batch_size)
        out = model(x)
        terms = vq_losses(out.recon, x, out.commit_loss, cfg)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        sched.step()
        for k, v in {**terms, "perplexity": out.perplexity}.items():
            acc[k] = acc.get(k, 0.0) + float(v.detach())
        if (it + 1) % cfg.log_every == 0 or it + 1 == cfg.iters:
            n = (it % cfg.log_every) + 1
            row = {"iter": it + 1, "lr": opt.param_groups[0]["lr"], **{k: v / n for k, v in acc.items()},
                   "seconds": time.perf_counter() - t0}
            history.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", ppl=f"{row['perplexity']:.0f}", refresh=False)
            acc = {}
            if verbose:
                print(f"[tokenizer] iter {row['iter']:>7d}  loss {row['loss']:.4f}  rec {row['rec']:.4f}  "
                      f"aux {row['aux']:.4f}  commit {row['commit']:.4f}  ppl {row['perplexity']:.1f}  "
                      f"lr {row['lr']:.2e}", flush=True)
    bar.close()
    return tok.eval(), history


def reconstruction_report(tok: MotionTokenizer, motions: Sequence[np.ndarray],
                          batch_size: int = 128) -> dict[str, Any]:
    """Encode/decode raw motions and measure: MPJPE in mm (global joints and root-relative, through
    ``benchmark.motion.features_to_joints``), smooth-L1 on normalised features, codebook usage
    (fraction of codes used) and perplexity of the code histogram."""
    from benchmark.motion import features_to_joints

    motions = [np.asarray(m, np.float32) for m in motions if len(m) >= tok.downsample]
    if not motions:
        return {"n_motions": 0}
    ids = tok.encode_batch(motions)
    recon = tok.decode_batch(ids)
    std = tok.std.cpu().numpy()
    err_sum = local_sum = feat_sum = 0.0
    n_frames = 0
    for s in range(0, len(motions), batch_size):
        rec = recon[s: s + batch_size]
        lengths = np.array([len(r) for r in rec])
        gts = [m[: n] for m, n in zip(motions[s: s + batch_size], lengths)]
        t_max = int(lengths.max())
        g = np.stack([np.pad(a, ((0, t_max - len(a)), (0, 0))) for a in gts])   # (B, T, F) raw
        r = np.stack([np.pad(a, ((0, t_max - len(a)), (0, 0))) for a in rec])
        mask = np.arange(t_max)[None, :] < lengths[:, None]                      # (B, T)
        jg, jr = features_to_joints(g), features_to_joints(r)   # (B, T, 22, 3) m; causal in T
        err_sum += float(np.linalg.norm(jg - jr, axis=-1)[mask].sum())
        local = (jg - jg[..., :1, :]) - (jr - jr[..., :1, :])   # root-relative
        local_sum += float(np.linalg.norm(local, axis=-1)[mask].sum())
        diff = np.abs((g - r) / std)[mask]
        feat_sum += float(np.where(diff < 1.0, 0.5 * diff ** 2, diff - 0.5).sum())
        n_frames += int(mask.sum())
    n_joint_frames = n_frames * jg.shape[-2]
    all_ids = torch.from_numpy(np.concatenate(ids))
    counts = np.bincount(all_ids.numpy(), minlength=tok.codebook_size)
    return {
        "n_motions": len(motions), "n_tokens": int(counts.sum()),
        "mpjpe_mm": 1000.0 * err_sum / n_joint_frames,
        "mpjpe_local_mm": 1000.0 * local_sum / n_joint_frames,
        "feature_smooth_l1": feat_sum / (n_frames * tok.config.feature_dim),
        "codebook_usage": float((counts > 0).mean()),
        "perplexity": float(perplexity_of(all_ids, tok.codebook_size)),
    }


def _part_motions(corpus, part: str) -> list[np.ndarray]:
    labels = corpus.labels
    if "part" not in labels.columns:
        raise DataError(getattr(corpus, "root", None), "corpus labels have no 'part' column",
                        "load the corpus with benchmark.corpus.load_corpus")
    return [corpus.features(i) for i in labels.loc[labels["part"] == part, "id"]]


def train_tokenizer(corpus, out: str | Path, preset: str = "tiny", seed: int = 0, iters: int | None = None,
                    device: str | torch.device = "cpu", overwrite: bool = False,
                    verbose: bool = False) -> MotionTokenizer:
    """Train on ``corpus``'s train part, report on its test part, write the folder ``out`` atomically
    (config.json, vqvae.safetensors, mean.npy, std.npy, report.json) and return the tokenizer."""
    chosen = get_preset(preset, iters)
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(out, "the output folder already exists", "choose another --out or pass --overwrite")
    train = _part_motions(corpus, "train")
    if not train:
        raise DataError(corpus.root, "the corpus has no train-part motions", "rebuild the corpus")
    t0 = time.perf_counter()
    tok, history = fit_vqvae(train, corpus.mean, corpus.std, chosen, seed=seed, device=device,
                             verbose=verbose, corpus_hash=corpus.content_hash)
    train_s = time.perf_counter() - t0
    test = reconstruction_report(tok, _part_motions(corpus, "test"))
    tok.report = {
        "preset": chosen.name, "seed": seed, "device": str(device), "iters": chosen.train.iters,
        "train_seconds": train_s, "n_train_motions": len(train), "test": test,
        "loss_first": history[0] if history else None, "loss_last": history[-1] if history else None,
        "history": history, "config": {"model": asdict(chosen.model), "train": asdict(chosen.train)},
        "corpus_hash": corpus.content_hash, "provenance": provenance(),
    }
    if verbose:
        print(f"[tokenizer] test part: MPJPE {test.get('mpjpe_mm', math.nan):.1f} mm "
              f"(root-relative {test.get('mpjpe_local_mm', math.nan):.1f} mm), codebook usage "
              f"{test.get('codebook_usage', math.nan):.2f}, perplexity {test.get('perplexity', math.nan):.1f}, "
              f"trained in {train_s:.0f} s", flush=True)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        tok.write_into(tmp)
    return tok
