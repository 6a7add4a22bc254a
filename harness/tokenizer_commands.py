"""``l2emg tokenizer train``: train the VQ-VAE tokenizer on a corpus folder."""
from __future__ import annotations

import argparse


def train_args(parser: argparse.ArgumentParser) -> None:
    from benchmark.tokenizer.config import PRESETS

    parser.add_argument("--data", required=True, help="corpus folder (HumanML3D format + labels.csv)")
    parser.add_argument("--out", required=True, help="tokenizer folder to write")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                        help="model/training size (default: tiny)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, default=None, help="override the preset's iterations")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")


def train(args: argparse.Namespace) -> int:
    import json

    from benchmark.corpus import load_corpus
    from benchmark.tokenizer.train import train_tokenizer

    corpus = load_corpus(args.data)
    tok = train_tokenizer(corpus, args.out, preset=args.preset, seed=args.seed, iters=args.iters,
                          device=args.device, overwrite=args.overwrite, verbose=True)
    print(json.dumps({"out": str(args.out), "content_hash": tok.content_hash, **tok.report["test"]},
                     indent=2))
    return 0
