"""The SeqLoRA train step against this CPU's matmul throughput, with each speed lever off/on,
and generation tokens/s of the strategy's path against plain ``generate`` on the same model, in
one run (docs/runner.md "Where the time goes").

    python perf/bench_train_step.py [--steps 12] [--rounds 3] [--threads 1] [--prompts 128]
        [--skip-compile] [--profile]

Model: the ``long`` preset's shape (tiny LLaMA hidden 96, FFN 256, 2 layers; LoRA r 16 on the
seven linear maps, dropout 0.05, batch 16) on a word-level vocabulary of synthetic-corpus
captions, 128 motion codes, motions of 10-50 codes.  Per configuration a SeqLoRA trains on the
same items; configurations take turns for ``--rounds`` rounds of ``--steps`` steps (paired under
the same machine load; the first round is warm-up).  Times are the thread's CPU time per step
(``time.thread_time``: with one torch thread it is what the step costs, whatever else the
machine runs), median over the timed steps.  FLOPs come from ``torch.utils.flop_counter`` on
separate steps of the same loader (matmuls and attention, forward + backward), so ``% peak``
is executed FLOPs / time / the peak of a 1024^3 fp32 ``mm`` measured first.  Generation samples
``--prompts`` prompts x 50 tokens (min = max new tokens) with the KV cache, best of 3.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

N_CODES = 128
# the `long` preset's training settings are read from harness.run_config at run time
LEVERS = [("baseline (long preset)", {}),
          ("loss_logits_only", {"loss_logits_only": True}),
          ("length_bucketing", {"length_bucketing": True}),
          ("lora_dropout=0", {"lora_dropout": 0.0}),
          ("all three", {"loss_logits_only": True, "length_bucketing": True, "lora_dropout": 0.0}),
          ("all three + compile", {"loss_logits_only": True, "length_bucketing": True,
                                   "lora_dropout": 0.0, "compile": True})]


def matmul_peak(n: int = 1024, repeats: int = 8) -> float:
    """fp32 GFLOP/s of one (n x n) @ (n x n) ``torch.mm`` on this thread, best of ``repeats``."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.thread_time()
        torch.mm(a, b)
        best = min(best, time.thread_time() - t)
    return 2 * n ** 3 / best / 1e9


def captions():
    """Captions of the synthetic corpus's templates (3 per action x emotion), seeded."""
    import numpy as np

    from benchmark.corpus.actions import ACTIONS
    from benchmark.corpus.texts import EMOTION_WORDS, make_captions

    rng = np.random.default_rng(0)
    return [c for a in ACTIONS.values() for e in EMOTION_WORDS for c in make_captions(rng, a.phrases, e, n=3)]


def experience(texts, n_items: int = 800):
    import numpy as np
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.utils import AvalancheDataset

    rng = np.random.default_rng(1)
    items = [{"id": f"i{i}", "features": rng.integers(0, N_CODES, int(rng.integers(10, 51))).astype(np.int64),
              "text": texts[int(rng.integers(len(texts)))], "emotion": 0, "scenario": 0, "subset": 0}
             for i in range(n_items)]
    data = AvalancheDataset([items])
    return list(benchmark_from_datasets(train=[data], test=[data]).train_stream)[0]


class StepClock:
    """Avalanche plugin: thread CPU time of each training iteration (batch to optimiser step);
    with ``count`` set, FLOPs of forward + backward instead (torch's FlopCounterMode)."""

    def __init__(self):
        from avalanche.core import SupervisedPlugin

        clock = self

        class _P(SupervisedPlugin):
            def before_training_iteration(self, strategy, **kw):
                clock.t0 = time.thread_time()
                clock.tokens.append(int(strategy.mbatch["attention_mask"].numel()))
                clock.loss_tokens.append(int((strategy.mbatch["labels"] != -100).sum()))

            def before_forward(self, strategy, **kw):
                if clock.count:
                    from torch.utils.flop_counter import FlopCounterMode

                    clock.mode = FlopCounterMode(display=False)
                    clock.mode.__enter__()

            def after_backward(self, strategy, **kw):
                if clock.count:
                    clock.mode.__exit__(None, None, None)
                    clock.flops.append(clock.mode.get_total_flops())

            def after_update(self, strategy, **kw):
                clock.times.append(time.thread_time() - clock.t0)

        self.plugin = _P()
        self.count = False
        self.times: list[float] = []
        self.flops: list[int] = []
        self.tokens: list[int] = []
        self.loss_tokens: list[int] = []


def build(path, overrides: dict, base: dict):
    from benchmark.backbone import MotionLM
    from benchmark.strategy import registry

    mlm = MotionLM.from_pretrained(path, N_CODES)
    clock = StepClock()
    cfg = registry.make_config("seq_lora", {**base, **overrides})
    s = registry.get_strategy("seq_lora").cls(motion_lm=mlm, config=cfg, plugins=[clock.plugin])
    return s, clock


def run_steps(s, exp, steps: int) -> None:
    s.config.max_steps = steps
    s.train(exp, eval_streams=[])


def train_table(path, exp, base: dict, args) -> dict:
    peak = matmul_peak()
    print(f"fp32 matmul peak (1024^3 mm, 1 thread, best of 8): {peak:.1f} GFLOP/s", flush=True)
    levers = [lv for lv in LEVERS if not (args.skip_compile and lv[1].get("compile"))]
    runs = {name: build(path, o, base) for name, o in levers}
    for name, (s, clock) in runs.items():           # FLOPs on separate steps, then reset
        clock.count = True
        run_steps(s, exp, 4)
        clock.count = False
        clock.flops_per_step = statistics.mean(clock.flops)
        clock.pad = 1 - sum(clock.loss_tokens) / sum(clock.tokens)
        clock.times.clear()
    for r in range(args.rounds):
        for name, (s, clock) in runs.items():
            n = len(clock.times)
            run_steps(s, exp, args.steps)
            if r == 0:                                 # warm-up (allocator, compile)
                del clock.times[n:]
    base_ms = None
    print(f"{'configuration':<24}{'step ms':>9}{'x':>7}{'GFLOP/step':>12}{'GFLOP/s':>9}{'% peak':>8}"
          f"{'tokens':>8}{'no-loss %':>10}")
    out = {}
    for name, (s, clock) in runs.items():
        ms = 1000 * statistics.median(clock.times)
        base_ms = base_ms or ms
        gf = clock.flops_per_step / 1e9
        rate = gf / (ms / 1000)
        out[name] = ms
        print(f"{name:<24}{ms:>9.1f}{base_ms / ms:>7.2f}{gf:>12.3f}{rate:>9.1f}{100 * rate / peak:>8.1f}"
              f"{statistics.mean(clock.tokens):>8.0f}{100 * clock.pad:>10.1f}", flush=True)
    print("x = speed-up over the baseline; tokens = positions per batch (padding included); "
          "no-loss % = positions that carry no loss (prompt + padding)")
    return runs


def generation_table(s, texts, args) -> None:
    import torch

    from benchmark.backbone import GenerationSettings

    mlm = s.motion_lm
    prompts = [texts[i % len(texts)] for i in range(args.prompts)]
    n_new = 50
    settings = GenerationSettings(do_sample=True, top_k=50, max_new_tokens=n_new, min_new_tokens=n_new,
                                  batch_size=args.prompts)

    def ours(merge: bool):
        s.config.merge_for_generation = merge
        return sum(len(c) + 1 for c in s.generate(prompts, settings))   # + <eom>/last token

    def plain():
        batch = mlm.generation_inputs(prompts)
        with s.eval_mode(), torch.no_grad():
            seq = s.model.generate(**batch, do_sample=True, top_k=50, max_new_tokens=n_new,
                                   min_new_tokens=n_new, pad_token_id=mlm.tokenizer.pad_token_id)
        return int(seq.shape[0] * (seq.shape[1] - batch["input_ids"].shape[1]))

    rows = {"plain HF generate": plain, "strategy.generate": lambda: ours(False),
            "strategy.generate, merged LoRA": lambda: ours(True)}
    best = {k: 0.0 for k in rows}
    for _ in range(3):
        for k, fn in rows.items():
            torch.manual_seed(0)
            t = time.thread_time()
            n = fn()
            best[k] = max(best[k], n / (time.thread_time() - t))
    print(f"\ngeneration, {args.prompts} prompts x {n_new} sampled tokens (top-k 50, KV cache), best of 3")
    print(f"{'path':<34}{'tokens/s':>10}{'x plain':>9}")
    for k, v in best.items():
        print(f"{k:<34}{v:>10.0f}{v / best['plain HF generate']:>9.2f}")
    s.config.merge_for_generation = False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prompts", type=int, default=128)
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument("--profile", action="store_true", help="also print torch.profiler's top ops "
                   "of 10 baseline steps")
    args = p.parse_args()
    import torch

    from benchmark.backbone import TinyBackboneConfig, build_tiny_backbone
    from harness.run_config import PRESETS
    from benchmark.strategy import registry

    torch.set_num_threads(args.threads)
    registry.discover([])
    base = {k: v for k, v in PRESETS["long"]["train"].items() if k not in ("max_steps", "epochs")}
    base["epochs"] = 1000
    texts = captions()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_backbone(texts, f"{tmp}/bb", TinyBackboneConfig(
            **PRESETS["long"]["tiny_backbone"]))
        exp = experience(texts)
        runs = train_table(path, exp, base, args)
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            s = runs[LEVERS[0][0]][0]
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                run_steps(s, exp, 10)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
        generation_table(runs["lora_dropout=0"][0], texts, args)
    print(f"\n({time.perf_counter() - t0:.0f} s wall, threads {args.threads}, "
          f"vocabulary {runs[LEVERS[0][0]][0].motion_lm.vocab_size})")


if __name__ == "__main__":
    main()
