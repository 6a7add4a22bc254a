"""Speed levers (benchmark.strategy.speed): each is off by default and keeps the config hash;
on, loss-position logits give the full-logits loss and gradients, length buckets hold every item
once per epoch, merged LoRA samples the unmerged model's greedy tokens, compile falls back."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.backbone import GenerationSettings, MotionLM
from benchmark.strategy import lora, registry, speed
from benchmark.strategy.config import SPEED_DEFAULTS, StrategyConfig
from strategy_fakes import fake_scenario

K = 16


@pytest.fixture()
def mlm(tiny_backbone_dir):
    return MotionLM.from_pretrained(tiny_backbone_dir, n_codes=K)


def _seq_lora(mlm, **overrides):
    registry.discover()
    cfg = registry.make_config("seq_lora", {"lr": 3e-3, "batch_size": 4, "lora_dropout": 0.0,
                                            **overrides})
    return registry.get_strategy("seq_lora").cls(motion_lm=mlm, config=cfg, device="cpu", seed=0)


def _with_trained_looking_lora(s):
    """Add adapter ``exp0`` with non-zero B (a fresh LoRA is the identity) and moved token rows."""
    s.add_lora("exp0")
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for n, p in s.model.named_parameters():
            if "lora_B" in n or "trainable_tokens_delta" in n:
                p.add_(0.2 * torch.randn(p.shape, generator=g))


def _batch(mlm, lengths=(5, 12, 3, 9)):
    texts = ["a person walks forward happily", "someone jumps with joy",
             "a sad man sits down slowly", "the dancer spins in surprise"][: len(lengths)]
    rng = np.random.default_rng(0)
    return mlm.build_batch(texts, [rng.integers(0, K, n) for n in lengths])


# ---------------------------------------------------------------------------- defaults
def test_levers_are_off_by_default_and_leave_the_config_dict_alone():
    cfg = StrategyConfig()
    assert all(getattr(cfg, k) == v for k, v in SPEED_DEFAULTS.items())
    assert not set(SPEED_DEFAULTS) & set(cfg.to_dict())          # hash as before they existed
    on = StrategyConfig.from_dict({"length_bucketing": "true", "loss_logits_only": "1"})
    assert on.to_dict()["length_bucketing"] is True and on.to_dict()["loss_logits_only"] is True
    assert StrategyConfig.from_dict(on.to_dict()) == on


# ---------------------------------------------------------------------------- loss positions
def test_loss_positions_known_answer():
    labels = torch.tensor([[-100, -100, 7, 8, -100], [-100, 5, 6, -100, -100]])
    where, targets = speed.loss_positions(labels)
    assert where.tolist() == [[0, 1], [0, 2], [1, 0], [1, 1]]     # position t predicts t + 1
    assert targets.tolist() == [7, 8, 5, 6]


def test_loss_logits_only_gives_the_full_logits_loss_and_gradients(mlm):
    s = _seq_lora(mlm)
    _with_trained_looking_lora(s)
    b = _batch(mlm)
    full = s.model(**b)
    full.loss.backward()
    g_full = {n: p.grad.clone() for n, p in s.model.named_parameters() if p.grad is not None}
    s.model.zero_grad(set_to_none=True)
    head = speed.LossPositionsHead(s.model, speed.causal_lm_of(s.model))
    try:
        part = s.model(**b)
        n_loss = int((b["labels"][:, 1:] != -100).sum())
        assert part.logits.shape == (1, n_loss, mlm.vocab_size)     # only where loss is taken
        part.loss.backward()
        no_labels = s.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
        assert no_labels.logits.shape == full.logits.shape          # untouched without labels
    finally:
        head.remove()
    torch.testing.assert_close(part.loss, full.loss, rtol=1e-6, atol=1e-6)
    g_part = {n: p.grad for n, p in s.model.named_parameters() if p.grad is not None}
    assert set(g_part) == set(g_full) and g_full
    for n in g_full:
        torch.testing.assert_close(g_part[n], g_full[n], rtol=1e-5, atol=1e-6)
    again = s.model(**b)                                             # removed: the usual model
    assert again.logits.shape == full.logits.shape and float(again.loss.detach()) == float(full.loss.detach())


def test_loss_logits_only_trains_like_the_default(mlm, tiny_backbone_dir):
    """One SeqLoRA step through the strategy, option off / on: the same loss (float tolerance;
    later steps drift apart at rounding level, as AdamW's first updates are sign-like)."""
    scenario = fake_scenario(n_tasks=1, n_train=12)
    first = []
    for on in (False, True):
        s = _seq_lora(MotionLM.from_pretrained(tiny_backbone_dir, n_codes=K), max_steps=1,
                      loss_logits_only=on)
        s.train(scenario.train_stream[0], eval_streams=[])
        assert s._loss_head is None                                  # removed after the experience
        assert "_loss_function" not in vars(speed.causal_lm_of(s.model))
        first.append(s.history[0]["lm_loss"])
    assert first[1] == pytest.approx(first[0], rel=1e-6)


def test_loss_logits_only_refuses_lwf(mlm):
    s = _seq_lora(mlm, loss_logits_only=True, with_plugins=("lwf",))
    s.add_lora("exp0")
    with pytest.raises(ValueError, match="loss_logits_only"):
        s._install_speed_levers()


# ---------------------------------------------------------------------------- length buckets
@pytest.mark.parametrize("n,batch,pool", [(103, 8, 3), (16, 4, 50), (5, 8, 2)])
def test_length_buckets_hold_every_item_once_per_epoch(n, batch, pool):
    rng = np.random.default_rng(n)
    lengths = rng.integers(10, 80, n).tolist()
    sampler = speed.LengthBucketSampler(lengths, batch, torch.Generator().manual_seed(0), pool)
    epochs = [list(sampler) for _ in range(2)]
    for batches in epochs:
        assert len(batches) == len(sampler) == -(-n // batch)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(n))                        # each item exactly once
        assert sum(len(b) < batch for b in batches) <= 1
    assert epochs[0] != epochs[1]                                    # reshuffled per epoch
    again = speed.LengthBucketSampler(lengths, batch, torch.Generator().manual_seed(0), pool)
    assert list(again) == epochs[0]                                  # seeded: resumable


def test_length_buckets_cut_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 80, 400).tolist()

    def padding(batches):
        return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)

    g = torch.Generator().manual_seed(0)
    plain = [torch.randperm(400, generator=g)[k: k + 16].tolist() for k in range(0, 400, 16)]
    bucketed = speed.bucket_batches(lengths, 16, torch.Generator().manual_seed(0))
    assert padding(bucketed) < 0.25 * padding(plain)


def test_length_bucketing_loader_covers_the_experience(mlm):
    scenario = fake_scenario(n_tasks=1, n_train=10)
    s = _seq_lora(mlm, length_bucketing=True, max_steps=100)
    s.train(scenario.train_stream[0], eval_streams=[])
    assert s.history[0]["steps"] == 3                                # ceil(10 / 4) batches
    lengths = s.item_lengths(scenario.train_stream[0].dataset)
    batch = s.collate([scenario.train_stream[0].dataset[0]])
    assert lengths[0] == batch["input_ids"].shape[1]


# ---------------------------------------------------------------------------- merged LoRA
def test_merged_lora_generates_the_same_greedy_tokens_and_restores_the_weights(mlm):
    s = _seq_lora(mlm)
    _with_trained_looking_lora(s)
    before = {n: p.detach().clone() for n, p in s.model.named_parameters()}
    texts = ["a person walks forward happily", "someone jumps with joy", "a sad man sits down slowly"]
    greedy = GenerationSettings(do_sample=False, max_new_tokens=12, min_new_tokens=12)
    plain = s.generate(texts, greedy)
    b = {k: v for k, v in _batch(mlm, (6, 6, 6)).items()}
    with s.eval_mode(), torch.no_grad():
        ref = s.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        with speed.merged_lora(s.model) as n:
            assert n == len(lora.lora_layers(s.model))
            merged_logits = s.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    torch.testing.assert_close(merged_logits, ref, rtol=1e-4, atol=1e-4)
    s.config.merge_for_generation = True
    merged = s.generate(texts, greedy)
    assert [c.tolist() for c in merged] == [c.tolist() for c in plain]
    after = dict(s.model.named_parameters())
    assert set(after) == set(before)
    assert all(torch.equal(after[n], before[n]) for n in before)     # bit for bit
    assert not any(m.merged for m in lora.lora_layers(s.model).values())


def test_merged_lora_follows_the_active_adapter(mlm):
    """With two adapters, the merge uses the active one (the other stays out)."""
    s = _seq_lora(mlm)
    _with_trained_looking_lora(s)
    s.add_lora("exp1")
    lora.set_active(s.motion_lm, "exp0")
    b = _batch(mlm, (6, 6, 6))
    with s.eval_mode(), torch.no_grad():
        ref = s.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        with speed.merged_lora(s.model):
            got = s.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- compile
def test_compile_falls_back_when_torch_compile_fails(mlm, monkeypatch):
    s = _seq_lora(mlm)
    s.add_lora("exp0")

    def broken(self, *a, **kw):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch.nn.Module, "compile", broken)
    with pytest.warns(UserWarning, match="eagerly"):
        assert speed.compile_layers(s.model) == 0
    b = _batch(mlm)
    assert torch.isfinite(s.model(**b).loss)


@pytest.mark.slow
def test_compile_trains_like_eager_and_is_undone_after_the_experience(tiny_backbone_dir):
    """compile=True: the first step's loss equals eager's (float tolerance); after the
    experience the layers run eagerly again (generation does not recompile)."""
    scenario = fake_scenario(n_tasks=1, n_train=8)
    first = []
    for on in (False, True):
        s = _seq_lora(MotionLM.from_pretrained(tiny_backbone_dir, n_codes=K), max_steps=1, compile=on)
        s.train(scenario.train_stream[0], eval_streams=[])
        assert all(layer._compiled_call_impl is None for layer in speed.decoder_layers(s.model))
        first.append(s.history[0]["lm_loss"])
    assert len(speed.decoder_layers(s.model)) == 2
    assert first[1] == pytest.approx(first[0], rel=1e-4)


def test_compile_refuses_an_expert_bank(mlm):
    from benchmark.strategy.experts import ExpertBank

    s = _seq_lora(mlm, compile=True)
    s.add_lora("exp0")
    s.bank = ExpertBank(s.model, ["exp0"]).attach()
    with pytest.raises(ValueError, match="expert bank"):
        s._install_speed_levers()
