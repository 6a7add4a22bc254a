"""Prog-Prompt and SAPT baselines: frozen old parameters, growing prompts, soft gate over the
learned scenarios, attentive reflection KL, generation, checkpoints, bad configs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from strategy_fakes import TEXTS, fake_scenario

N_CODES = 16
TEXT_LIST = [TEXTS[0][0], TEXTS[1][1], TEXTS[2][0]]


def _motion_lm(backbone_dir):
    from benchmark.backbone.motion_lm import MotionLM

    return MotionLM.from_pretrained(backbone_dir, n_codes=N_CODES)


def _greedy(n=6):
    from benchmark.backbone.motion_lm import GenerationSettings

    return GenerationSettings(do_sample=False, max_new_tokens=n)


def _train_all(strategy, snapshot, n_tasks=3):
    """Train every experience of a small fake scenario; ``snapshot(strategy)`` after each."""
    scenario = fake_scenario(n_tasks=n_tasks, n_train=8, n_test=2, n_codes=N_CODES)
    snaps = []
    for exp in scenario.train_stream:
        strategy.train(exp)
        snaps.append(snapshot(strategy))
    return snaps


def _clone(named):
    return {n: p.detach().clone() for n, p in named}


# ====================================================================== Prog-Prompt
@pytest.fixture(scope="module")
def prog(tiny_backbone_dir):
    from baselines.prog_prompt import ProgPrompt, ProgPromptConfig

    lm = _motion_lm(tiny_backbone_dir)
    base = _clone(lm.model.named_parameters())
    s = ProgPrompt(motion_lm=lm, config=ProgPromptConfig(batch_size=4, max_steps=2, prompt_length=3),
                   seed=0)
    snaps = _train_all(s, lambda st: {"prompts": [p.detach().clone() for p in st.prompts.raw],
                                      "total": st.prompts.total_length,
                                      "rows": st.method_modules["rows"].embed.detach().clone()})
    return s, snaps, base


def test_prog_prompt_grows_one_block_per_scenario(prog):
    s, snaps, _ = prog
    assert [len(sn["prompts"]) for sn in snaps] == [1, 2, 3]
    assert [sn["total"] for sn in snaps] == [3, 6, 9]
    ids = torch.ones(2, 5, dtype=torch.long)
    x, mask, labels = s.prepend(ids, torch.ones_like(ids), torch.zeros_like(ids))
    assert x.shape[:2] == (2, 5 + 9) and mask.shape == (2, 14)
    assert (labels[:, :9] == -100).all() and (labels[:, 9:] == 0).all()


def test_prog_prompt_old_prompts_and_backbone_bit_identical(prog):
    s, snaps, base = prog
    for i in range(1, len(snaps)):
        for j in range(i):                 # prompt j unchanged by every later scenario
            assert torch.equal(snaps[i]["prompts"][j], snaps[j]["prompts"][j])
    for n, p in s.model.named_parameters():
        assert torch.equal(p.detach(), base[n]), n          # the backbone never trains
    assert not torch.equal(snaps[-1]["rows"], snaps[0]["rows"])   # motion-token rows do


def _one_backward(strategy):
    from strategy_fakes import fake_items

    strategy.model.zero_grad(set_to_none=True)
    strategy.method_modules.zero_grad(set_to_none=True)
    strategy.mbatch = strategy.collate(fake_items(2, 4, N_CODES))
    strategy.forward().loss.backward()


def test_prog_prompt_gradient_reaches_only_the_newest_prompt(prog):
    s, _, _ = prog
    s.prompts.raw[-1].requires_grad_(True)          # as during the last scenario
    try:
        _one_backward(s)
        assert s.prompts.raw[-1].grad is not None and s.prompts.raw[-1].grad.abs().sum() > 0
        assert all(p.grad is None for p in list(s.prompts.raw)[:-1])
        assert all(p.grad is None for p in s.model.parameters())
    finally:
        s.prompts.raw[-1].requires_grad_(False)
        s.method_modules.zero_grad(set_to_none=True)


def test_prog_prompt_generation_uses_prompts_and_is_padding_invariant(prog):
    s, _, _ = prog
    out = s.generate(TEXT_LIST, _greedy())
    assert len(out) == 3 and all(o.dtype == np.int64 and ((o >= 0) & (o < N_CODES)).all() for o in out)
    alone = s.generate([TEXT_LIST[0]], _greedy())[0]            # no padding vs left-padded
    np.testing.assert_array_equal(alone, out[0])
    raw = s.prompts.raw[-1]
    with torch.no_grad():
        saved = raw.clone()
        raw.add_(torch.randn(raw.shape, generator=torch.Generator().manual_seed(1)))
        changed = s.generate(TEXT_LIST, _greedy())
        raw.copy_(saved)
    assert any(not np.array_equal(a, b) for a, b in zip(out, changed))


def test_prog_prompt_checkpoint_round_trip(prog, tiny_backbone_dir):
    from baselines.prog_prompt import ProgPrompt

    s, _, _ = prog
    other = ProgPrompt(motion_lm=_motion_lm(tiny_backbone_dir), config=s.config, seed=0)
    other.load_state_dict(s.state_dict())
    assert len(other.prompts) == 3
    for a, b in zip(s.prompts.raw, other.prompts.raw):
        assert torch.equal(a, b)
    for a, b in zip(s.generate(TEXT_LIST, _greedy()), other.generate(TEXT_LIST, _greedy())):
        np.testing.assert_array_equal(a, b)


def test_prog_prompt_newest_prompt_first_as_the_reference(prog):
    s, _, _ = prog
    ids = torch.ones(1, 2, dtype=torch.long)
    with torch.no_grad():
        x, _ = s.prepend(ids, torch.ones_like(ids))
        n = s.config.prompt_length
        blocks = [x[0, i * n:(i + 1) * n] for i in range(3)]
        for b, k in zip(blocks, (2, 1, 0)):                # [P_3; P_2; P_1; text]
            assert torch.equal(b, s.prompts.prompt(k)), k
        s.prompts.newest_first = False
        try:
            x2, _ = s.prepend(ids, torch.ones_like(ids))
        finally:
            s.prompts.newest_first = True
        assert torch.equal(x2[0, :n], s.prompts.prompt(0))


def test_prog_prompt_residual_mlp_reparameterises_and_is_stored(tiny_backbone_dir):
    from baselines.prog_prompt import ProgPrompt, ProgPromptConfig

    scenario = fake_scenario(n_tasks=1, n_train=8, n_test=2, n_codes=N_CODES)
    s = ProgPrompt(motion_lm=_motion_lm(tiny_backbone_dir),
                   config=ProgPromptConfig(batch_size=4, max_steps=1, prompt_length=3), seed=0)
    s.before_experience(scenario.train_stream[0])
    with torch.no_grad():
        trained = s.prompts(1, transform=s.method_modules["mlp"])[0].clone()
        raw = s.prompts.prompt(0).clone()
    assert not torch.allclose(trained, raw)                 # MLP(P) + P, not P
    s.after_experience(scenario.train_stream[0])
    assert torch.allclose(s.prompts.prompt(0), trained, atol=1e-6)   # what trained is stored
    assert not any(p.requires_grad for p in s.method_modules["mlp"].parameters())


def test_prog_prompt_step_is_a_fraction_of_the_embedding_scale(tiny_backbone_dir):
    """One AdamW step moves the prompt by about prompt_step x std(embeddings), not by a
    multiple of it (the old fixed multiplier of 50 moved it by lr * 50 = 5x the scale)."""
    from baselines.prog_prompt import ProgPrompt, ProgPromptConfig

    scenario = fake_scenario(n_tasks=1, n_train=8, n_test=2, n_codes=N_CODES)
    s = ProgPrompt(motion_lm=_motion_lm(tiny_backbone_dir),
                   config=ProgPromptConfig(batch_size=4, max_steps=1, prompt_length=3, lr=2e-3,
                                           residual_mlp=False), seed=0)
    std = float(s.model.get_input_embeddings().weight.float().std())
    before = []
    s.before_experience = (lambda f: lambda e: (f(e), before.append(s.prompts.prompt(0).detach().clone())))(
        s.before_experience)
    s.train(scenario.train_stream[0])
    step = (s.prompts.prompt(0) - before[0]).abs().max().item()
    assert 0.2 * 0.05 * std < step < 2 * 0.05 * std, (step, std)


def test_prog_prompt_bad_config():
    from benchmark.io import DataError
    from benchmark.strategy.registry import make_config

    import baselines.prog_prompt  # noqa: F401 - registers the name

    with pytest.raises(DataError, match="prompt_length"):
        make_config("prog_prompt", {"prompt_length": "0"})
    with pytest.raises(DataError, match="prompt_init"):
        make_config("prog_prompt", {"prompt_init": "zeros"})


# ====================================================================== SAPT
@pytest.fixture(scope="module")
def sapt(tiny_backbone_dir):
    from baselines.sapt import SAPT, SAPTConfig
    from benchmark.strategy import lora

    lm = _motion_lm(tiny_backbone_dir)
    cfg = SAPTConfig(batch_size=4, max_steps=2, lr=1e-2, n_pseudo=4, replay_batch_size=2,
                     reflect_target="sample")
    s = SAPT(motion_lm=lm, config=cfg, seed=0)
    snaps = _train_all(s, lambda st: {
        "lora": {a: _clone(lora.adapter_parameters(lm, a).items()) for a in st.experts},
        "keys": [k.detach().clone() for k in st.selector.keys]})
    return s, snaps


def test_sapt_gate_sums_to_one_over_learned_scenarios(sapt):
    s, _ = sapt
    assert s.experts == ["exp0", "exp1", "exp2"] and s.bank.n_experts == 3
    w = s.attention(TEXT_LIST)
    assert w.shape == (3, 3) and (w > 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(3))
    assert all(layer.disable_adapters for layer in s.bank.layers.values())   # only the bank mixes


def test_sapt_old_lora_blocks_and_keys_bit_identical(sapt):
    s, snaps = sapt
    for i in range(1, len(snaps)):
        for a in s.experts[:i]:
            old, now = snaps[i - 1]["lora"][a], snaps[i]["lora"][a]
            assert old.keys() == now.keys() and all(torch.equal(old[n], now[n]) for n in old), a
        for j in range(i):
            assert torch.equal(snaps[i]["keys"][j], snaps[i - 1]["keys"][j])
    assert s.history[-1]["reflection_kl"] > 0            # replay ran in the last scenario


def test_reflection_kl_zero_iff_attention_unchanged():
    from baselines.sapt import reflection_kl

    scores = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, 3.0]])
    p = torch.softmax(scores, -1)
    assert float(reflection_kl(scores, p)) == pytest.approx(0.0, abs=1e-6)
    assert float(reflection_kl(scores + torch.tensor([0.0, 0.5, 0.0]), p)) > 1e-3
    # zero-padded target for a scenario learned later: 0 only if it takes no attention
    old = torch.softmax(scores[:, :2], -1)
    assert float(reflection_kl(torch.cat([scores[:, :2], torch.full((2, 1), -1e4)], 1), old)) \
        == pytest.approx(0.0, abs=1e-6)
    assert float(reflection_kl(scores, old)) > 1e-3
    with pytest.raises(ValueError):
        reflection_kl(scores[:, :2], p)


def test_sapt_reflection_on_stored_pseudo_samples(sapt):
    s, _ = sapt
    assert [m["attention"].shape for m in s.memory] == [(4, 1), (4, 2), (4, 3)]
    last = s.memory[-1]
    assert all(isinstance(it["motion_ids"], np.ndarray) for it in last["items"])
    with torch.no_grad():                 # unchanged selector: the stored attention is recovered
        scores = s.selector.scores(s._pooled_texts([it["text"] for it in last["items"]]))
        from baselines.sapt import reflection_kl

        assert float(reflection_kl(scores, last["attention"])) == pytest.approx(0.0, abs=1e-5)
        # a 4th scenario whose key is orthogonal to every query (score 0) still takes mass
        scores4 = torch.cat([scores, torch.zeros(len(scores), 1)], 1)
        assert float(reflection_kl(scores4, last["attention"])) > 1e-3


class _NoData:
    """An experience whose dataset raises on any read (to prove none happens)."""

    class dataset:                                   # noqa: N801 - stands in for a dataset
        def __len__(self):
            raise AssertionError("the scenario's stored data was read")

        def __getitem__(self, i):
            raise AssertionError("the scenario's stored data was read")

    dataset = dataset()


def test_sapt_generated_pseudo_samples_feed_the_selection_loss(tiny_backbone_dir):
    """pseudo_source='generated' (default, as SAPT): the pseudo-prompts are sampled from the
    model with the scenario's own block and never read the scenario's data; the reflection
    loss sees pseudo-samples of every earlier scenario at every step; 'real' reads the data."""
    from baselines.sapt import SAPT, SAPTConfig

    assert SAPTConfig().pseudo_source == "generated"
    cfg = SAPTConfig(batch_size=4, max_steps=2, lr=1e-2, n_pseudo=3, replay_batch_size=2)
    s = SAPT(motion_lm=_motion_lm(tiny_backbone_dir), config=cfg, seed=0)
    scenario = fake_scenario(n_tasks=3, n_train=8, n_test=2, n_codes=N_CODES)
    real = {it["text"] for exp in scenario.train_stream for it in exp.dataset}
    sizes: list[int] = []              # rows of every selector.scores call
    calls: list[list[int]] = []        # the rows scored inside each reflection_loss call
    orig = s.selector.scores

    def spy(pooled):
        sizes.append(len(pooled))
        return orig(pooled)

    s.selector.scores = spy
    orig_loss = s.reflection_loss

    def loss_spy():
        start = len(sizes)
        out = orig_loss()
        calls.append(sizes[start:])
        return out

    s.reflection_loss = loss_spy
    for k, exp in enumerate(scenario.train_stream):
        calls.clear()
        s.train(exp)
        assert len(s.memory) == k + 1
        if k:         # every step: replay_batch_size pseudo-samples of each earlier scenario
            assert len(calls) == 2 and all(c == [2] * k for c in calls), calls
    for mem in s.memory:
        texts = [it["text"] for it in mem["items"]]
        assert len(texts) == 3 and all(t.strip() for t in texts)
    s.selector.scores = orig
    with torch.no_grad():
        s.memory.append(s.pseudo_samples(_NoData()))      # generated: the data is never read
    assert len(s.memory[-1]["items"]) == 3
    r = SAPT(motion_lm=_motion_lm(tiny_backbone_dir),
             config=SAPTConfig(batch_size=4, max_steps=1, n_pseudo=2, pseudo_source="real"), seed=0)
    r.train(scenario.train_stream[0])
    assert {it["text"] for it in r.memory[0]["items"]} <= real
    with pytest.raises(AssertionError, match="read"):
        r.pseudo_samples(_NoData())


def test_sapt_generation_and_checkpoint_round_trip(sapt, tiny_backbone_dir):
    from baselines.sapt import SAPT

    s, _ = sapt
    out = s.generate(TEXT_LIST, _greedy())
    assert len(out) == 3 and all(((o >= 0) & (o < N_CODES)).all() for o in out)
    other = SAPT(motion_lm=_motion_lm(tiny_backbone_dir), config=s.config, seed=0)
    other.load_state_dict(s.state_dict())
    torch.testing.assert_close(other.attention(TEXT_LIST), s.attention(TEXT_LIST))
    for a, b in zip(out, other.generate(TEXT_LIST, _greedy())):
        np.testing.assert_array_equal(a, b)
    assert len(other.memory) == 3


def test_sapt_bad_config():
    from benchmark.io import DataError
    from benchmark.strategy.registry import make_config

    import baselines.sapt  # noqa: F401 - registers the name

    with pytest.raises(DataError, match="reflect_target"):
        make_config("sapt", {"reflect_target": "mean"})
    with pytest.raises(DataError, match="kl_ratio"):
        make_config("sapt", {"kl_ratio": "-1"})


# ====================================================================== end to end (registry)
@pytest.mark.slow
@pytest.mark.parametrize("name", ["prog_prompt", "sapt"])
def test_registered_name_trains_two_scenarios_and_generates(name, tiny_backbone_dir):
    """By name through the registry with ``--set``-style string overrides (the runner's path
    until ``harness/runner.py`` lands): two scenarios, then generation for every prompt."""
    import importlib

    from benchmark.strategy.registry import get_strategy, make_config

    importlib.import_module(f"baselines.{name}")
    cfg = make_config(name, {"batch_size": "4", "max_steps": "1", "epochs": "1",
                             **({"n_pseudo": "2"} if name == "sapt" else {})})
    s = get_strategy(name).cls(motion_lm=_motion_lm(tiny_backbone_dir), config=cfg, seed=1)
    for exp in fake_scenario(n_tasks=2, n_train=4, n_test=2, n_codes=N_CODES).train_stream:
        s.train(exp)
    assert [h["experience"] for h in s.history] == [1, 2]
    assert all(np.isfinite(h["lm_loss"]) for h in s.history)
    out = s.generate(TEXT_LIST, _greedy(4))
    assert len(out) == 3 and all(((o >= 0) & (o < N_CODES)).all() for o in out)
    assert all(v > 0 for v in s.memory_per_scenario().values())


def test_sapt_lora_shape_is_the_references():
    from benchmark.strategy.registry import make_config

    import baselines.sapt  # noqa: F401 - registers the name

    c = make_config("sapt", {})
    assert (c.lora_r, c.lora_alpha, c.lora_dropout, c.target_modules) == (4, 32.0, 0.0,
                                                                          ("q_proj", "v_proj"))
