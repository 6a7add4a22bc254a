"""``l2emg evaluator train`` and ``l2emg evaluator score`` (heavy imports inside the functions)."""
from __future__ import annotations

import argparse


def train_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", "--corpus", dest="corpus", required=True, help="corpus folder (HumanML3D format + labels.csv)")
    parser.add_argument("--out", required=True, help="evaluator folder to write")
    parser.add_argument("--preset", default="tiny", choices=("test", "tiny", "paper"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's T2M epochs")
    parser.add_argument("--emo-epochs", type=int, default=None, help="override the emotion epochs")
    parser.add_argument("--loss", choices=("infonce", "margin"), default=None)
    parser.add_argument("--word-vectors", default=None,
                        help="GloVe-style text file (word v1 .. vD); frozen word embeddings")
    parser.add_argument("--dim-word", type=int, default=None, help="word vector size (e.g. 300)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def train(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from benchmark.corpus import load_corpus
    from benchmark.io import DataError
    from evaluators.train import train_evaluator

    if Path(args.out).exists() and not args.overwrite:
        raise DataError(args.out, "the output folder already exists", "choose another --out or pass --overwrite")
    overrides = {k: v for k, v in (("epochs", args.epochs), ("emo_epochs", args.emo_epochs),
                                   ("loss", args.loss), ("word_vectors", args.word_vectors),
                                   ("dim_word", args.dim_word)) if v is not None}
    corpus = load_corpus(args.corpus)
    ev = train_evaluator(corpus, args.out, preset=args.preset, seed=args.seed, device=args.device,
                         overwrite=True, **overrides)
    report = json.loads((Path(args.out) / "report.json").read_text())
    rr, emo = report["test_real_vs_real"] or {}, report["emotion"]
    print(f"evaluator {ev.content_hash} -> {args.out}  ({report['time_s']['total']:.0f} s)")
    if rr:
        print(f"test real-vs-real: R@1..3 {', '.join(f'{v:.3f}' for v in rr['r_precision'])} "
              f"(batch {rr['batch_size']}, n {rr['n']}), MM-Dist {rr['matching_score']:.3f}")
    print(f"emotion classifier: test accuracy {emo['test_accuracy']:.3f}, weighted F1 "
          f"{emo['test_weighted_f1']:.3f} (chance {emo['chance_accuracy']:.3f})")
    return 0


def score_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--evaluator", required=True, help="evaluator folder")
    parser.add_argument("--data", required=True, help="corpus folder")
    parser.add_argument("--part", default="test", choices=("train", "val", "test"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache-dir", default=None, help="where ground-truth statistics are cached")
    parser.add_argument("--json", default=None, help="also write the row to this JSON file")


def score(args: argparse.Namespace) -> int:
    import numpy as np

    from benchmark.corpus import load_corpus
    from benchmark.io import DataError, atomic_write_json
    from evaluators.evaluator import Evaluator

    ev = Evaluator.load(args.evaluator, device=args.device, cache_dir=args.cache_dir)
    corpus = load_corpus(args.data)
    ev.check_corpus(corpus)
    ids = corpus.part_ids(args.part)
    if len(ids) < 2:
        raise DataError(args.data, f"the {args.part} part has {len(ids)} motions", "use a larger corpus")
    rng = np.random.default_rng(args.seed)
    texts = [(lambda c: c[int(rng.integers(len(c)))])(corpus.texts(i)) for i in ids]
    row = ev.score_ground_truth([corpus.features(i) for i in ids], texts,
                                [corpus.emotion_index(i) for i in ids], repeats=args.repeats,
                                seed=args.seed, batch_size=args.batch_size)
    print(f"real vs real on {args.part} ({row['n']} motions, {args.repeats} repeats, R-precision batch "
          f"{row['r_precision_batch']}, chance R@1 {1 / row['r_precision_batch']:.3f}):")
    for key in ("fid", "r_precision_top1", "r_precision_top2", "r_precision_top3", "matching_score",
                "diversity", "multimodality", "emotion_f1"):
        ci = row.get(f"{key}_ci95")
        print(f"  {key:18s} {row[key]:.4f}" + (f" ± {ci:.4f}" if ci is not None else ""))
    if args.json:
        atomic_write_json(args.json, row)
    return 0
