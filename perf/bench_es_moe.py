"""ES-MoE vs SeqLoRA speed, measured in one run on the same backbone and batches.

    python perf/bench_es_moe.py [--hidden 96 --layers 2 --heads 4] [--batch 8] [--motion 50]
                                 [--experts 8] [--repeats 10] [--threads 1] [--device cpu]
Train step: forward + backward + AdamW step of one batch (ES-MoE with ``--experts`` experts,
masking on, top-k 2).  Generation: ``--motion`` new tokens per prompt (min = max, so both
methods sample the same number), cached, greedy; ES-MoE's gate + CGED computed once per prompt.
Prints milliseconds / step, tokens / s, their ratios, and memory per added scenario.
Timings are the best of interleaved repeats (the two methods alternate; the best is the
least disturbed by other processes on a shared machine); medians are printed too.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

TEXTS = ["a person walks happily forward", "someone jumps in anger", "a sad man sits down slowly",
         "the dancer spins with joy", "a fearful person runs away", "he waves his hand calmly",
         "she kicks a ball with excitement", "a tired man drags his feet forward"]


def backbone(args, n_codes: int):
    """A random-init LLaMA of the tiny backbone's shape + a word-level tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from benchmark.backbone import MotionLM, train_text_tokenizer

    tok = train_text_tokenizer(TEXTS)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=args.hidden, num_hidden_layers=args.layers,
                      intermediate_size=args.hidden * 8 // 3, num_attention_heads=args.heads,
                      num_key_value_heads=args.heads, max_position_embeddings=256,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    return MotionLM(LlamaForCausalLM(cfg), tok, n_codes)


def fake_experience(n_items: int, n_codes: int, motion: int):
    from avalanche.benchmarks.scenarios.generic_scenario import CLScenario, EagerCLStream
    from avalanche.benchmarks.utils import AvalancheDataset

    from benchmark.streams import _make_experience_class

    rng = np.random.default_rng(0)
    items = [{"id": str(i), "features": rng.integers(0, n_codes, motion), "emotion": i % 7,
              "text": TEXTS[i % len(TEXTS)], "scenario": 0, "subset": 0} for i in range(n_items)]
    exp = _make_experience_class()(dataset=AvalancheDataset([items]), subset_name="S", scenario_id=0)
    CLScenario([EagerCLStream("train", [exp])])
    return exp, items


def build(name: str, args, exp, make_backbone=None):
    """A strategy of method ``name`` ready to train its ``args.experts``-th experience
    (``make_backbone(args, n_codes) -> MotionLM``, default :func:`backbone`)."""
    from benchmark.strategy import discover, get_strategy, make_config

    discover()
    cfg = make_config(name, {"batch_size": args.batch, "lora_dropout": 0.0})
    s = get_strategy(name).cls(motion_lm=(make_backbone or backbone)(args, args.codes), config=cfg,
                               device=args.device)
    s.model.to(args.device)
    n = args.experts if name == "es_moe" else 1
    for i in range(n):
        s.exp_counter = i
        s.before_experience(exp)
        if i < n - 1:
            s.after_experience(exp)
    s.make_optimizer()                    # the protocol's AdamW (fused kernel), same for both
    s.dataloader = range(1000)            # only its length is read (masking progress)
    s.model.train()
    return s


def train_step(s, batch) -> None:
    s.mbatch = batch
    s.optimizer.zero_grad(set_to_none=True)
    out = s.forward()
    terms = [t for t in s.loss_terms(batch, out).values() if t is not None]
    loss = out.loss if not terms else out.loss + sum(terms[1:], terms[0])
    loss.backward()
    s.optimizer_step()


@torch.no_grad()
def generate(s, gen, n_new: int):
    from methods.es_moe.strategy import ESMoE

    model = s.routed_model() if isinstance(s, ESMoE) else s.model
    model.eval()
    out = model.generate(input_ids=gen["input_ids"], attention_mask=gen["attention_mask"],
                         max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False,
                         pad_token_id=s.motion_lm.tokenizer.pad_token_id)
    s.model.train()
    return out


def timed(fn, sync) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, default in (("--hidden", 96), ("--layers", 2), ("--heads", 4), ("--batch", 8),
                          ("--motion", 50), ("--experts", 8), ("--repeats", 10), ("--steps", 5),
                          ("--codes", 512), ("--threads", 1)):
        p.add_argument(flag, type=int, default=default)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    exp, items = fake_experience(args.batch, args.codes, args.motion)
    methods = {name: build(name, args, exp) for name in ("seq_lora", "es_moe")}
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    batch = {k: v.to(dev) if torch.is_tensor(v) else v
             for k, v in methods["es_moe"].collate(items).items()}
    gen = {k: v.to(dev) for k, v in methods["es_moe"].motion_lm.generation_inputs(
        [it["text"] for it in items]).items()}
    times = {name: {"train": [], "gen": []} for name in methods}
    for name, s in methods.items():                      # warm-up
        train_step(s, batch)
        generate(s, gen, 4)
    for rep in range(args.repeats):
        for name, s in list(methods.items())[::1 if rep % 2 else -1]:     # alternate the order
            times[name]["train"].append(
                timed(lambda: [train_step(s, batch) for _ in range(args.steps)], sync) / args.steps)
            times[name]["gen"].append(timed(lambda: generate(s, gen, args.motion), sync))
    res = {}
    for name in methods:
        step, gen_s = min(times[name]["train"]), min(times[name]["gen"])
        tok_s = args.batch * args.motion / gen_s
        res[name] = {"train_ms": 1000 * step, "gen_tok_s": tok_s,
                     "train_ms_median": 1000 * statistics.median(times[name]["train"]),
                     "gen_tok_s_median": args.batch * args.motion / statistics.median(times[name]["gen"])}
        print(f"{name:9s} train step {1000 * step:8.1f} ms (median {res[name]['train_ms_median']:.1f})"
              f"   generation {tok_s:9.1f} tokens/s (median {res[name]['gen_tok_s_median']:.1f})")
    res["train_ratio"] = res["es_moe"]["train_ms"] / res["seq_lora"]["train_ms"]
    res["gen_ratio"] = res["es_moe"]["gen_tok_s"] / res["seq_lora"]["gen_tok_s"]
    res["train_ratio_median"] = res["es_moe"]["train_ms_median"] / res["seq_lora"]["train_ms_median"]
    res["gen_ratio_median"] = res["es_moe"]["gen_tok_s_median"] / res["seq_lora"]["gen_tok_s_median"]
    res["memory_per_scenario"] = methods["es_moe"].memory_per_scenario()
    print(f"ES-MoE ({args.experts} experts) / SeqLoRA: train step x{res['train_ratio']:.2f} "
          f"(target <= 1.25), generation tokens/s x{res['gen_ratio']:.2f} (target >= 0.80)   "
          f"[medians: x{res['train_ratio_median']:.2f}, x{res['gen_ratio_median']:.2f}]")
    print(f"memory per added scenario (bytes): {res['memory_per_scenario']}")
    return res


if __name__ == "__main__":
    main()
