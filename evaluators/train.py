"""Train the T2M evaluator (contrastive text/motion matching) and the emotion classifier on the
corpus train part, select epochs on the val part, report on the test part.

Loss (``config.loss``): ``infonce`` (default): symmetric cross-entropy over in-batch pairs with
logits ``-||t - m|| / T`` (Euclidean, the distance the metrics use); ``margin``: the original
contrastive loss on shuffled negatives, ``d_pos^2 + max(0, margin - d_neg)^2``.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmark.io import DataError, provenance
from benchmark.seed import seed_everything
from evaluators import metrics as M
from evaluators.config import EvaluatorConfig, preset_config
from evaluators.data import evaluator_statistics, pad_batch, random_crop
from evaluators.emotion import fit_emotion_classifier, predict
from evaluators.evaluator import Evaluator, build_nets
from evaluators.vocab import Vocabulary, load_vectors

log = logging.getLogger(__name__)


def contrastive_loss(t: torch.Tensor, m: torch.Tensor, cfg: EvaluatorConfig,
                     gen: torch.Generator | None = None) -> torch.Tensor:
    """Loss of matched text/motion embeddings ``(B, D)``."""
    if cfg.loss == "infonce":
        logits = -torch.cdist(t, m) / cfg.temperature
        target = torch.arange(len(t), device=t.device)
        return 0.5 * (nn.functional.cross_entropy(logits, target)
                      + nn.functional.cross_entropy(logits.T, target))
    shift = int(torch.randint(1, len(t), (1,), generator=gen))
    d_pos = (t - m).norm(dim=-1)
    d_neg = (t - m.roll(shift, 0)).norm(dim=-1)
    return (d_pos.pow(2) + (cfg.margin - d_neg).clamp(min=0).pow(2)).mean()


def _pairs_batch(ev: Evaluator, motions, captions, idx, rng, random: bool):
    """Normalised motion batch + encoded caption batch for items ``idx``."""
    mots = [random_crop(motions[i], rng, ev.config.max_motion_len) if random else motions[i] for i in idx]
    caps = [captions[i][int(rng.integers(len(captions[i])))] if random else captions[i][0] for i in idx]
    x, lens = pad_batch(mots, ev.mean, ev.std, ev.device, ev.config.max_motion_len)
    ids, pos, tl = (torch.from_numpy(a).to(ev.device) for a in ev.vocab.encode_batch(caps))
    return x, lens, ids, pos, tl


@torch.no_grad()
def real_vs_real(ev: Evaluator, motions, captions, batch_size: int = 32, seed: int = 0) -> dict:
    """R-precision and matching score of real motions vs their first caption (deterministic crop)."""
    t = ev.embed_texts([c[0] for c in captions])
    m = ev.embed_motions(motions)
    bs = min(batch_size, len(m))
    perm = np.random.default_rng(seed).permutation(len(m))[: (len(m) // bs) * bs]
    rp = M.r_precision(t[perm], m[perm], top_k=min(3, bs), batch_size=bs)
    return {"r_precision": rp.tolist(), "matching_score": M.matching_score(t[perm], m[perm]),
            "batch_size": bs, "n": len(m)}


def fit_t2m(ev: Evaluator, train, train_caps, val, val_caps, seed: int) -> dict:
    """Contrastive training in place; keeps the state with the best val mean R@1..3."""
    cfg = ev.config
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in ev.net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    best, best_state, history = -1.0, None, []
    from benchmark import progress

    bar = progress.bar(cfg.epochs, "evaluator", unit="epoch")
    for epoch in range(cfg.epochs):
        ev.net.train()
        order = rng.permutation(len(train))
        losses = []
        for s in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):   # full batches only
            x, lens, ids, pos, tl = _pairs_batch(ev, train, train_caps, order[s:s + cfg.batch_size], rng, True)
            loss = contrastive_loss(ev.net.encode_text(ids, pos, tl), ev.net.encode_motion(x, lens), cfg, gen)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(loss.item())
        ev.net.eval()
        score = float(np.mean(real_vs_real(ev, val, val_caps, seed=seed)["r_precision"])) if len(val) >= 2 else epoch
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_r_precision_mean": score})
        log.info("evaluator epoch %d loss %.4f val R %.3f", epoch + 1, history[-1]["loss"], score)
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", val_R=f"{score:.3f}", refresh=False)
        if score >= best:
            best, best_state = score, {k: v.detach().clone() for k, v in ev.net.state_dict().items()}
    bar.close()
    ev.net.load_state_dict(best_state)
    ev.net.eval()
    return {"history": history, "best_val_r_precision_mean": best}


def _part(corpus, part: str):
    ids = corpus.part_ids(part)
    return ids, [corpus.features(i) for i in ids], [corpus.texts(i) for i in ids], \
        np.array([corpus.emotion_index(i) for i in ids], dtype=np.int64)


def train_evaluator(corpus, out: str | os.PathLike, preset: str = "tiny", seed: int = 0,
                    device: torch.device | str = "cpu", overwrite: bool = True,
                    **overrides) -> Evaluator:
    """Train the T2M evaluator + emotion classifier on ``corpus``'s train part; save to ``out``.

    ``overrides`` change preset fields (e.g. ``epochs=5``, ``word_vectors="glove.txt"``).
    """
    t0 = time.time()
    seed_everything(seed)
    cfg = preset_config(preset, **overrides)
    tr_ids, train, train_caps, y_train = _part(corpus, "train")
    _, val, val_caps, y_val = _part(corpus, "val")
    _, test, test_caps, y_test = _part(corpus, "test")
    if len(train) < cfg.batch_size:
        raise DataError(getattr(corpus, "root", None), f"only {len(train)} train motions, fewer than "
                        f"one batch ({cfg.batch_size})", "build a larger corpus (--scale)")
    vocab = Vocabulary.build([c for caps in train_caps for c in caps], cfg.min_count, cfg.max_text_len)
    cfg.vocab, cfg.emotions = vocab.words, list(corpus.emotions)
    cfg.corpus_hash, cfg.feature_dim = corpus.content_hash, int(len(corpus.mean))
    mean, std = evaluator_statistics(corpus.mean, corpus.std, cfg.feat_bias)
    net, emo = build_nets(cfg)
    coverage = None
    if cfg.word_vectors:
        table, coverage = load_vectors(cfg.word_vectors, vocab)
        if table.shape[1] != cfg.dim_word:
            raise DataError(cfg.word_vectors, f"vectors have {table.shape[1]} dims, config dim_word is "
                            f"{cfg.dim_word}", f"pass dim_word={table.shape[1]}")
        net.word_emb.weight.data.copy_(torch.from_numpy(table))
    ev = Evaluator(cfg, net, emo, mean, std, device)
    t2m_log = fit_t2m(ev, train, train_caps, val, val_caps, seed)
    t_t2m = time.time() - t0
    emo_log = fit_emotion_classifier(
        ev.emotion, train, y_train, val, y_val, mean, std, epochs=cfg.emo_epochs,
        batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay, seed=seed, device=ev.device)
    ev.emotion.eval()
    pred = predict(ev.emotion, test, mean, std, ev.device) if test else np.zeros(0, np.int64)
    report = {
        "preset": preset, "seed": seed, "corpus_hash": cfg.corpus_hash,
        "n_train": len(train), "n_val": len(val), "n_test": len(test), "vocab_size": len(vocab),
        "word_vector_coverage": coverage,
        "test_real_vs_real": real_vs_real(ev, test, test_caps, seed=seed) if len(test) >= 2 else None,
        "emotion": {"test_accuracy": float((pred == y_test).mean()) if len(test) else None,
                    "test_weighted_f1": M.emotion_f1(pred, y_test) if len(test) else None,
                    "chance_accuracy": 1.0 / len(cfg.emotions), **emo_log},
        "t2m_training": t2m_log, "time_s": {"t2m": t_t2m, "total": time.time() - t0},
        "provenance": provenance(),
    }
    ev.save(Path(out), report, overwrite=overwrite)
    return ev
