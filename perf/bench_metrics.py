"""Speed of the measuring instrument, in one run: metrics for N generated motions (FID +
R-precision + matching score + diversity from embeddings) and evaluator embedding throughput.

    python perf/bench_metrics.py [--n 1000] [--preset tiny] [--threads 2]

The evaluator is built at the preset's sizes with random weights (speed does not depend on
training); motions are random raw features of 40-196 frames.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--preset", default="tiny", choices=("test", "tiny", "paper"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from evaluators.config import preset_config
    from evaluators.evaluator import Evaluator, build_nets
    from evaluators.scoring import score_embeddings
    from evaluators.vocab import Vocabulary
    import sklearn.metrics  # noqa: F401  (import time is not metric time)

    rng = np.random.default_rng(0)
    words = "a person walks runs jumps forward back left right happily sadly angrily slowly".split()
    texts = [" ".join(rng.choice(words, rng.integers(4, 12))) for _ in range(args.n)]
    cfg = preset_config(args.preset, vocab=Vocabulary.build(texts).words,
                        emotions=["neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted"])
    net, emo = build_nets(cfg)
    ev = Evaluator(cfg, net, emo, np.zeros(263, np.float32), np.ones(263, np.float32))
    motions = [rng.normal(size=(int(rng.integers(40, 197)), 263)).astype(np.float32) for _ in range(args.n)]
    labels = rng.integers(0, 7, args.n)

    t0 = time.perf_counter()
    m_emb = ev.embed_motions(motions)
    t1 = time.perf_counter()
    t_emb = ev.embed_texts(texts)
    t2 = time.perf_counter()
    pred = ev.predict_emotions(motions)
    t3 = time.perf_counter()
    ref_stats = (m_emb.mean(0), np.cov(m_emb, rowvar=False))
    t4 = time.perf_counter()
    row = score_embeddings(t_emb, m_emb, ref_stats, pred, labels, repeats=1)
    t5 = time.perf_counter()

    metrics_s = t5 - t4
    total = (t1 - t0) + (t2 - t1) + metrics_s
    print(f"preset {args.preset}, {args.n} motions (40-196 frames), {args.threads} torch threads")
    print(f"  motion embedding : {t1 - t0:7.3f} s  ({args.n / (t1 - t0):8.0f} motions/s)")
    print(f"  text embedding   : {t2 - t1:7.3f} s  ({args.n / (t2 - t1):8.0f} texts/s)")
    print(f"  emotion predict  : {t3 - t2:7.3f} s  ({args.n / (t3 - t2):8.0f} motions/s)")
    print(f"  metrics (FID + R-precision + MM-Dist + diversity + F1): {metrics_s:7.3f} s")
    print(f"  embeddings + metrics: {total:7.3f} s  (target <= 2 s; metrics are {metrics_s / total:.1%} of it)")
    print(f"  sanity: R@1 {row['r_precision_top1']:.3f} (random weights, chance {1 / row['r_precision_batch']:.3f})")


if __name__ == "__main__":
    main()
