"""GPU readiness: the paper-size path on one device, measured in one run.

    python perf/gpu_check.py                                   # LLaMA-2-7B shape, bf16, cuda
    python perf/gpu_check.py --device cpu --layers 2 --hidden 128 --skip-run   # dry run on CPU

1. Builds a LLaMA-2-7B-shaped ``LlamaForCausalLM`` from a ``LlamaConfig`` (hidden 4096, 32
   layers, 32 heads, MLP 11008, vocabulary 32000; random init directly on the device, bf16,
   nothing downloaded); ``--layers`` / ``--hidden`` shrink it (heads = hidden / 128, MLP scaled).
2. SeqLoRA and ES-MoE (``--experts`` 8 experts, the last one training) train steps on a batch
   of ``--batch`` x (prompt + ``--motion`` motion tokens), built and stepped exactly as
   ``perf/bench_es_moe.py`` does (its ``build`` / ``train_step`` / ``generate``), then KV-cache
   generation of ``--gen-tokens`` tokens per prompt.  Prints train tokens/s, step time, the
   ES-MoE / SeqLoRA step-time ratio, generation tokens/s and peak device memory per method.
3. Unless ``--skip-run``: one full ``--preset test`` run (SeqLoRA, 2 scenarios) on ``--device``,
   stopped after the first experience and resumed, and the same run on the CPU; the per-epoch
   training losses must agree within ``--rtol`` (default 1e-3, relative) and the ground-truth
   row within ``--atol`` (1e-4).  The generated-motion metrics are printed, not compared:
   sampling diverges as soon as one logit differs in the last bit.
Exit status 1 when a comparison fails.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_es_moe as bem  # noqa: E402 - the shared strategy builders / step / generation

LLAMA2_7B = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                 intermediate_size=11008, vocab_size=32000, max_position_embeddings=4096)


def _train_text_tokenizer_once(_cache={}):
    if "tok" not in _cache:
        from benchmark.backbone import train_text_tokenizer

        _cache["tok"] = train_text_tokenizer(bem.TEXTS)
    return _cache["tok"]


def llama_config(args):
    """LLaMA-2-7B's config, shrunk by ``--layers`` / ``--hidden``."""
    from transformers import LlamaConfig

    tok = _train_text_tokenizer_once()
    hidden = args.hidden or LLAMA2_7B["hidden_size"]
    heads = max(1, hidden // 128)
    inter = LLAMA2_7B["intermediate_size"] * hidden // LLAMA2_7B["hidden_size"]
    return LlamaConfig(vocab_size=max(args.vocab, len(tok)), hidden_size=hidden,
                       num_hidden_layers=args.layers or LLAMA2_7B["num_hidden_layers"],
                       num_attention_heads=heads, num_key_value_heads=heads,
                       intermediate_size=inter, max_position_embeddings=4096, rms_norm_eps=1e-5,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, tie_word_embeddings=False), tok


def make_backbone(args, n_codes: int):
    """``bench_es_moe.build``'s backbone hook: the LLaMA-shaped model, initialised on the device."""
    from transformers import LlamaForCausalLM

    from benchmark.backbone import MotionLM, MotionLMConfig

    cfg, tok = llama_config(args)
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    with torch.device(args.device):
        model = LlamaForCausalLM._from_config(cfg, dtype=dtype)
    mlm = MotionLM(model, tok, n_codes, MotionLMConfig(dtype=args.dtype,
                                                       max_motion_tokens=args.motion))
    if args.gradient_checkpointing:
        mlm.enable_gradient_checkpointing()
    return mlm



def _peak_mb(dev) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**20
    from benchmark.io import peak_rss_mb

    return peak_rss_mb()


def measure(name: str, args, dev) -> dict:
    """Build one method on a fresh model, time train steps and generation, free it."""
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    exp, items = bem.fake_experience(args.batch, args.codes, args.motion)
    s = bem.build(name, args, exp, make_backbone=make_backbone)
    batch = {k: v.to(dev) if torch.is_tensor(v) else v for k, v in s.collate(items).items()}
    gen = {k: v.to(dev) for k, v in s.motion_lm.generation_inputs(
        [it["text"] for it in items]).items()}
    bem.train_step(s, batch)                                   # warm-up
    step = min(bem.timed(lambda: bem.train_step(s, batch), sync) for _ in range(args.steps))
    train_peak = _peak_mb(dev)
    bem.generate(s, gen, 2)
    gen_s = min(bem.timed(lambda: bem.generate(s, gen, args.gen_tokens), sync)
                for _ in range(max(1, args.steps // 2)))
    tokens = int(batch["attention_mask"].sum())
    res = {"method": name, "step_ms": 1000 * step, "train_tok_s": tokens / step,
           "seq_len": int(batch["input_ids"].shape[1]),
           "gen_tok_s": args.batch * args.gen_tokens / gen_s, "train_peak_mb": train_peak,
           "peak_mb": _peak_mb(dev),
           "trainable_m": sum(p.numel() for p in s.model.parameters() if p.requires_grad) / 1e6
           + sum(p.numel() for p in s.method_modules.parameters() if p.requires_grad) / 1e6}
    del s, batch, gen
    gc.collect()
    return res


def full_run(args) -> bool:
    """The tiny test-preset run on the device with stop + resume, and on the CPU; compared."""
    import numpy as np
    import pandas as pd

    from harness.run_config import RunConfig
    from harness.runner import run

    root = Path(args.work or tempfile.mkdtemp(prefix="gpu_check_"))
    common = dict(method="seq_lora", preset="test", order="Daily Life,Sports", seed=0,
                  cache=str(args.cache or root / "cache"), max_test=4, progress=False,
                  threads=args.threads)
    outs = {}
    for dev in dict.fromkeys(["cpu", args.device]):             # CPU first: it builds the stages
        out = root / f"run_{dev.replace(':', '_')}"
        t0 = time.time()
        run(RunConfig.from_options(out=str(out), device=dev, stop_after=1, **common))
        run(RunConfig.from_options(out=str(out), device=dev, resume=True, **common))
        outs[dev] = out
        print(f"full test-preset run on {dev}: stop after 1 experience + resume, "
              f"{time.time() - t0:.0f} s -> {out}", flush=True)
    cpu, other = outs["cpu"], outs[args.device]
    ok = True
    la = pd.read_csv(cpu / "train_log.csv")["lm_loss"].to_numpy()
    lb = pd.read_csv(other / "train_log.csv")["lm_loss"].to_numpy()
    rel = float(np.max(np.abs(la - lb) / np.maximum(np.abs(la), 1e-12)))
    ok &= rel <= args.rtol
    print(f"  training loss per epoch, {args.device} vs cpu: max relative difference {rel:.2e} "
          f"(tolerance {args.rtol:g}) {'OK' if rel <= args.rtol else 'FAIL'}")
    ga = json.loads((cpu / "result.json").read_text())["ground_truth"]
    gb = json.loads((other / "result.json").read_text())["ground_truth"]
    diff = max(abs(ga[k] - gb[k]) for k in ga)
    ok &= diff <= args.atol
    print(f"  ground-truth row: max absolute difference {diff:.2e} (tolerance {args.atol:g}) "
          f"{'OK' if diff <= args.atol else 'FAIL'}")
    for k in ("r_precision_top1", "fid"):
        a = pd.read_csv(cpu / "matrices" / f"{k}.csv", index_col=0).to_numpy()
        b = pd.read_csv(other / "matrices" / f"{k}.csv", index_col=0).to_numpy()
        print(f"  {k} matrix (sampled motions, not compared): max |{args.device} - cpu| "
              f"{np.nanmax(np.abs(a - b)):.3g}")
    return ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    p.add_argument("--layers", type=int, default=0, help="decoder layers (default 32, LLaMA-2-7B)")
    p.add_argument("--hidden", type=int, default=0, help="hidden size (default 4096)")
    p.add_argument("--vocab", type=int, default=LLAMA2_7B["vocab_size"])
    for flag, default in (("--batch", 8), ("--motion", 200), ("--gen-tokens", 50), ("--experts", 8),
                          ("--steps", 3), ("--codes", 512), ("--threads", 1)):
        p.add_argument(flag, type=int, default=default)
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--skip-run", action="store_true", help="skip the full tiny run + comparison")
    p.add_argument("--cache", help="stage cache for the tiny run (default: a temp folder)")
    p.add_argument("--work", help="folder for the tiny runs (default: a temp folder)")
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--atol", type=float, default=1e-4)
    args = p.parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: error: --device cuda but torch sees no GPU. Fix: run on a GPU machine, "
              "or pass --device cpu --layers 2 --hidden 128 for a dry run", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    cfg, _ = llama_config(args)
    n_params = (cfg.vocab_size * cfg.hidden_size * 2 + cfg.num_hidden_layers * (
        4 * cfg.hidden_size ** 2 + 3 * cfg.hidden_size * cfg.intermediate_size
        + 2 * cfg.hidden_size) + cfg.hidden_size)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"gpu_check on {name}: LLaMA shape hidden {cfg.hidden_size}, {cfg.num_hidden_layers} layers, "
          f"{cfg.num_attention_heads} heads, MLP {cfg.intermediate_size}, vocab {cfg.vocab_size} "
          f"({n_params / 1e9:.3f} B parameters, {args.dtype}); batch {args.batch} x "
          f"{args.motion} motion tokens, gradient checkpointing "
          f"{'on' if args.gradient_checkpointing else 'off'}", flush=True)
    results = {}
    for method in ("seq_lora", "es_moe"):
        try:
            r = measure(method, args, dev)
        except RuntimeError as err:
            if "gradient checkpointing" not in str(err):
                raise
            print(f"{method:9s} not measured: {err}", flush=True)
            continue
        results[method] = r
        print(f"{method:9s} step {r['step_ms']:9.1f} ms  train {r['train_tok_s']:9.0f} tok/s "
              f"(seq {r['seq_len']})  generation {r['gen_tok_s']:8.1f} tok/s  trainable "
              f"{r['trainable_m']:.2f} M  peak {'GPU' if dev.type == 'cuda' else 'RSS'} "
              f"{r['train_peak_mb']:.0f} MiB (train) / {r['peak_mb']:.0f} MiB", flush=True)
    if len(results) == 2:
        ratio = results["es_moe"]["step_ms"] / results["seq_lora"]["step_ms"]
        gen_ratio = results["es_moe"]["gen_tok_s"] / results["seq_lora"]["gen_tok_s"]
        print(f"ES-MoE ({args.experts} experts) / SeqLoRA: step time x{ratio:.2f}, generation "
              f"tokens/s x{gen_ratio:.2f}", flush=True)
    ok = True if args.skip_run else full_run(args)
    print("gpu_check: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
