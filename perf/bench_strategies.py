"""Train-step time, generation tokens/s and peak memory of every registered strategy, as
ratios to SeqLoRA, measured in one run on the same tiny backbone and synthetic stream.

    python perf/bench_strategies.py [--methods seq_lora,mtl,...] [--plugin FILE.py]
        [--scenarios 3] [--items 32] [--batch 8] [--steps 6] [--hidden 96] [--motion 24]
        [--texts 16] [--repeats 3] [--threads 1] [--device cpu]

Each strategy runs in its own fresh process (so peak RSS is its own), next to a SeqLoRA
trained and timed in the same process (paired ratios under the same load): it trains on
``--scenarios`` experiences (``--steps`` optimiser steps each); the step time is the median
of the last experience's steps (growing methods are slowest there); generation samples
``--motion`` tokens for ``--texts`` prompts with the KV cache (min = max new tokens, so every
method decodes the same number of tokens; best of ``--repeats``).  Compare numbers within one run only.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time

TEXTS = ["a person walks happily forward", "someone jumps in anger", "a sad man sits down slowly",
         "the dancer spins with joy", "a fearful person runs away", "he waves his hand calmly",
         "she kicks a ball with excitement", "a tired man drags his feet"]
N_CODES = 64


def _stream(n_scenarios: int, n_items: int):
    import numpy as np
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.utils import AvalancheDataset

    def items(t):
        rng = np.random.default_rng(t)
        lo, hi = t * N_CODES // n_scenarios, (t + 1) * N_CODES // n_scenarios
        return [{"id": f"s{t}_{i}", "features": rng.integers(lo, hi, 24).astype(np.int64),
                 "text": TEXTS[(t + i) % len(TEXTS)], "emotion": i % 7, "scenario": t, "subset": t}
                for i in range(n_items)]

    data = [AvalancheDataset([items(t)]) for t in range(n_scenarios)]
    return list(benchmark_from_datasets(train=data, test=data).train_stream)


def _train(name: str, args: dict):
    """Build ``name`` on a fresh tiny backbone, train it on the stream; (strategy, step times)."""
    import tempfile

    import torch
    from avalanche.core import SupervisedPlugin

    from benchmark.backbone import MotionLM, TinyBackboneConfig, build_tiny_backbone
    from benchmark.strategy import registry

    entry = registry.get_strategy(name)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_backbone(TEXTS, f"{tmp}/bb", TinyBackboneConfig(hidden_size=args["hidden"]))
        mlm = MotionLM.from_pretrained(path, N_CODES, device=args["device"])
    steps: list[float] = []

    class Timer(SupervisedPlugin):
        def before_training_iteration(self, strategy, **kw):
            self.t0 = time.perf_counter()

        def after_update(self, strategy, **kw):
            if strategy.device.type == "cuda":
                torch.cuda.synchronize()
            steps.append(time.perf_counter() - self.t0)

    cfg = registry.make_config(name, {"batch_size": args["batch"], "max_steps": args["steps"],
                                      "epochs": 100})
    s = entry.cls(motion_lm=mlm, config=cfg, device=args["device"], plugins=[Timer()])
    stream = _stream(args["scenarios"], args["items"])
    if entry.cls.joint:
        data = stream[0].dataset
        for e in stream[1:]:
            data = data.concat(e.dataset)
        stream = [type(stream[0])(dataset=data, current_experience=0)]
    for exp in stream:
        steps.clear()
        s.train(exp, eval_streams=[])
    return s, list(steps)


def _measure(name: str, args: dict) -> dict:
    """Runs in a child process.  Peak memory is the method's own (measured before anything
    else is built); timings are paired with a SeqLoRA built in the same process and
    generating alternately with the method, so both ratios see the same machine load."""
    import torch

    from benchmark.backbone import GenerationSettings
    from benchmark.strategy import registry

    torch.set_num_threads(args["threads"])
    registry.discover(args["plugins"])
    settings = GenerationSettings(do_sample=True, max_new_tokens=args["motion"],
                                  min_new_tokens=args["motion"], batch_size=args["texts"])
    texts = [TEXTS[i % len(TEXTS)] for i in range(args["texts"])]
    s, steps = _train(name, args)
    s.generate(texts[:2], settings)                                  # warm-up
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    ref, ref_steps = _train("seq_lora", args) if name != "seq_lora" else (s, steps)
    ref.generate(texts[:2], settings)
    rates: dict[str, list[float]] = {"m": [], "ref": []}
    for _ in range(args["repeats"]):        # alternate; best of repeats = least disturbed
        for key, strat in (("m", s), ("ref", ref)):
            t = time.perf_counter()
            codes = strat.generate(texts, settings)
            rates[key].append(sum(len(c) for c in codes) / (time.perf_counter() - t))
    return {"method": name, "step_ms": 1000 * statistics.median(steps),
            "ref_step_ms": 1000 * statistics.median(ref_steps),
            "tok_s": max(rates["m"]), "ref_tok_s": max(rates["ref"]),
            "peak_rss_mb": peak_rss, "peak_gpu_mb": peak_gpu}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, default in (("--scenarios", 3), ("--items", 32), ("--batch", 8), ("--steps", 6),
                          ("--hidden", 96), ("--motion", 24), ("--texts", 16), ("--threads", 1),
                          ("--repeats", 3)):
        p.add_argument(flag, type=int, default=default)
    p.add_argument("--methods", default="", help="comma-separated names (default: all registered)")
    p.add_argument("--plugin", action="append", default=[])
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    from benchmark.strategy import registry

    names = [n for n in a.methods.split(",") if n] or sorted(registry.discover(a.plugin))
    names = ["seq_lora"] + [n for n in names if n != "seq_lora"]
    args = {**vars(a), "plugins": a.plugin}
    ctx = mp.get_context("spawn")
    print(f"device {a.device}, threads {a.threads}, hidden {a.hidden}, batch {a.batch}, "
          f"{a.scenarios} scenarios; x = ratio to seq_lora (timings paired in one process)", flush=True)
    print(f"{'method':<20}{'step ms':>9}{'x':>7}{'gen tok/s':>11}{'x':>7}{'peak MB':>9}{'x':>7}")
    mem = "peak_gpu_mb" if a.device.startswith("cuda") else "peak_rss_mb"
    ref = None
    for name in names:
        with ctx.Pool(1, maxtasksperchild=1) as pool:
            try:
                r = pool.apply(_measure, (name, args))
            except Exception as err:  # noqa: BLE001 - one broken method is reported, not fatal
                print(f"{name}: failed ({type(err).__name__}: {err})", flush=True)
                continue
        ref = ref or r
        print(f"{r['method']:<20}{r['step_ms']:>9.1f}{r['step_ms'] / r['ref_step_ms']:>7.2f}"
              f"{r['tok_s']:>11.0f}{r['tok_s'] / r['ref_tok_s']:>7.2f}"
              f"{r[mem]:>9.0f}{r[mem] / ref[mem]:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
