"""Shared CL components (distillation, reservoir buffer, orthogonality / L2 / EWC regularisers)
and the LwF-LoRA, Replay, EWC, O-LoRA and EPI baselines."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.strategy.distill import distillation_kl, lm_distillation
from benchmark.strategy.regularizers import EWC, orthogonality_penalty
from benchmark.strategy.replay import ReservoirBuffer

# three clearly different "scenarios": disjoint vocabularies
WORDS = {0: "dance spins twirls waltz ballet salsa tango pirouette".split(),
         1: "boxer punches kicks jabs blocks dodges uppercut hook".split(),
         2: "sleepy yawns stretches sits lies rests naps slumps".split()}


def _sentence(rng, task: int) -> str:
    return "a person " + " ".join(rng.choice(WORDS[task], size=4))


def _items(task: int, n: int, seed: int, n_codes: int = 12, length: int = 5) -> list[dict]:
    rng = np.random.default_rng([seed, task])
    lo, hi = task * n_codes // 3, (task + 1) * n_codes // 3
    return [{"id": f"t{task}_{seed}_{i}", "features": rng.integers(lo, hi, size=length).astype(np.int64),
             "text": _sentence(rng, task), "emotion": i % 7, "scenario": task, "subset": task}
            for i in range(n)]


def _scenario(n_tasks: int, n_train: int):
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.utils import AvalancheDataset

    return benchmark_from_datasets(
        train=[AvalancheDataset([_items(t, n_train, 0)]) for t in range(n_tasks)],
        test=[AvalancheDataset([_items(t, 4, 1)]) for t in range(n_tasks)])


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    from benchmark.backbone import TinyBackboneConfig, build_tiny_backbone

    texts = ["a person " + " ".join(w) for w in WORDS.values()]
    out = tmp_path_factory.mktemp("cl_backbone") / "tiny"
    return build_tiny_backbone(texts, out, TinyBackboneConfig(hidden_size=32, num_heads=2,
                                                              intermediate_size=64))


def _strategy(name: str, backbone, **overrides):
    from benchmark.backbone import MotionLM
    from benchmark.strategy import discover, get_strategy, make_config

    discover()
    cfg = make_config(name, {"epochs": 1, "batch_size": 8, **overrides})
    return get_strategy(name).cls(motion_lm=MotionLM.from_pretrained(backbone, n_codes=12),
                                  config=cfg, seed=0)


# ---------------------------------------------------------------------- distillation
def test_distillation_zero_for_identical_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(2, 5, 11, generator=g)
    assert distillation_kl(t.clone(), t, temperature=2.0).item() == pytest.approx(0.0, abs=1e-6)
    s = t + torch.randn(2, 5, 11, generator=g)
    assert distillation_kl(s, t, temperature=2.0).item() > 1e-3
    with pytest.raises(ValueError):
        distillation_kl(s, t[..., :10])


def test_distillation_gradient_points_towards_teacher_and_respects_mask():
    g = torch.Generator().manual_seed(1)
    teacher = torch.randn(1, 4, 7, generator=g)
    student = torch.randn(1, 4, 7, generator=g, requires_grad=True)
    labels = torch.tensor([[-100, -100, 3, 4]])     # positions 1, 2 predict targets
    T = 2.0
    loss = lm_distillation(student, teacher, labels, temperature=T)
    loss.backward()
    # d/dz_s [T^2 KL(p_t || p_s)] = T (p_s - p_t) per position, averaged over the 2 positions
    expect = T * (torch.softmax(student / T, -1) - torch.softmax(teacher / T, -1)) / 2
    assert torch.allclose(student.grad[0, 1:3], expect[0, 1:3].detach(), atol=1e-6)
    assert torch.all(student.grad[0, [0, 3]] == 0)
    # a small step against the gradient reduces the divergence
    with torch.no_grad():
        stepped = student - 0.5 * student.grad
    assert lm_distillation(stepped, teacher, labels, T) < loss


# ---------------------------------------------------------------------- reservoir buffer
def test_reservoir_capacity_and_uniform_sample():
    from scipy.stats import chisquare

    n, cap, runs = 1000, 100, 200
    counts = np.zeros(n)
    for seed in range(runs):
        buf = ReservoirBuffer(cap, seed=seed)
        buf.extend(range(n))
        assert len(buf) == cap and len(set(buf.items)) == cap
        counts[buf.items] += 1
    bins = counts.reshape(10, -1).sum(1)              # inclusions per decile of the stream
    assert chisquare(bins).pvalue > 1e-3, bins        # uniform: each decile ~ runs*cap/10
    assert abs(counts[:500].sum() - counts[500:].sum()) < 0.1 * runs * cap
    small = ReservoirBuffer(5, seed=0)
    small.extend(range(3))
    assert small.items == [0, 1, 2] and len(small.sample(10)) == 3
    assert ReservoirBuffer(0).extend(range(4)) == 0


def test_reservoir_state_dict_resumes_identically():
    a = ReservoirBuffer(10, seed=3)
    a.extend(range(50))
    b = ReservoirBuffer(10, seed=99)
    b.load_state_dict(a.state_dict())
    a.extend(range(50, 120))
    b.extend(range(50, 120))
    assert a.items == b.items and a.sample(4) == b.sample(4)
    with pytest.raises(ValueError):
        ReservoirBuffer(3).load_state_dict(a.state_dict())


# ---------------------------------------------------------------------- orthogonality
def test_orthogonality_penalty_zero_iff_orthogonal_and_optimisable():
    eye = torch.eye(6)
    old, new_orth = eye[:2], eye[2:5]
    assert orthogonality_penalty(new_orth, [old]).item() == 0.0
    g = torch.Generator().manual_seed(0)
    new = torch.nn.Parameter(torch.randn(3, 6, generator=g))
    start = orthogonality_penalty(new, [old, eye[5:6]])
    assert start.item() > 0
    opt = torch.optim.SGD([new], lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        orthogonality_penalty(new, [old, eye[5:6]]).backward()
        opt.step()
    assert orthogonality_penalty(new, [old, eye[5:6]]).item() < 0.4 * start.item()
    assert old.grad is None                     # old subspaces are constants


def test_lora_orthogonality_on_peft_adapters(backbone):
    from benchmark.strategy import lora
    from benchmark.strategy.regularizers import lora_l2, lora_orthogonality

    s = _strategy("o_lora", backbone)
    s.add_lora("exp0")
    s.add_lora("exp1")
    params = [p for n, p in s.model.named_parameters() if "lora_A" in n and ".exp1." in n]
    start = lora_orthogonality(s.model, "exp1", ["exp0"])
    assert start.item() > 0 and lora_orthogonality(s.model, "exp0", []).item() == 0
    assert lora_l2(s.model, "exp1").item() > 0
    opt = torch.optim.Adam(params, lr=0.01)
    for _ in range(10):
        opt.zero_grad()
        lora_orthogonality(s.model, "exp1", ["exp0"]).backward()
        opt.step()
    assert lora_orthogonality(s.model, "exp1", ["exp0"]).item() < 0.7 * start.item()
    assert lora.adapter_names(s.motion_lm) == ["exp0", "exp1"]


# ---------------------------------------------------------------------- EWC
def test_ewc_fisher_known_answer_and_quadratic_penalty():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    xs = [torch.tensor([1.0, 2.0, 0.0]), torch.tensor([3.0, 0.0, 0.0])]
    fisher = EWC.fisher([("w", w)], lambda x: (w * x).sum(), xs)   # grad = x
    assert torch.allclose(fisher["w"], torch.tensor([5.0, 2.0, 0.0]))
    ewc = EWC(lam=2.0)
    assert ewc.penalty([("w", w)]) is None
    ewc.consolidate([("w", w)], fisher)
    assert ewc.penalty([("w", w)]).item() == 0.0
    d = torch.tensor([0.1, 0.1, 0.1])
    p1 = ewc.penalty([("w", w + d)]).item()
    assert p1 == pytest.approx(0.5 * 2.0 * (5 * 0.01 + 2 * 0.01))
    assert ewc.penalty([("w", w + 2 * d)]).item() == pytest.approx(4 * p1)
    ewc.consolidate([("w", w)], fisher)                        # separate: two terms
    assert ewc.penalty([("w", w + d)]).item() == pytest.approx(2 * p1)
    online = EWC(lam=2.0, mode="online", gamma=0.5)
    online.consolidate([("w", w)], fisher)
    online.consolidate([("w", w)], fisher)
    assert len(online.terms) == 1 and torch.allclose(online.terms[0]["w"]["fisher"], 1.5 * fisher["w"])
    with pytest.raises(ValueError):
        EWC(lam=1.0, mode="bogus")


def test_ewc_terms_move_to_the_parameter_device_once():
    """The anchor/Fisher are moved to the parameter's device on first use and kept there (not
    copied every step); state_dict hands back CPU tensors.  The meta device stands in for a GPU."""
    w = torch.nn.Parameter(torch.ones(3))
    ewc = EWC(lam=1.0)
    ewc.consolidate([("w", w)], {"w": torch.ones(3)})
    on_meta = torch.nn.Parameter(torch.ones(3, device="meta"))
    assert ewc.penalty([("w", on_meta)]).device.type == "meta"
    moved = ewc.terms[0]["w"]["fisher"]
    assert moved.device.type == "meta"
    ewc.penalty([("w", on_meta)])
    assert ewc.terms[0]["w"]["fisher"] is moved           # no second copy
    cpu = EWC(lam=1.0)
    cpu.consolidate([("w", w)], {"w": torch.ones(3)})
    cpu.penalty([("w", w)])
    assert all(v.device.type == "cpu" for t in cpu.state_dict()["terms"] for d in t.values()
               for v in d.values())


# ---------------------------------------------------------------------- baselines
def _params(s, adapter):
    from benchmark.strategy import lora

    return {n: p.detach().clone() for n, p in lora.adapter_parameters(s.motion_lm, adapter).items()}


def _assert_restores(s, backbone):
    """state_dict -> load_state_dict into a fresh strategy: the same greedy generations."""
    from benchmark.backbone import GenerationSettings

    fresh = _strategy(s.name, backbone, **s.config.to_dict())
    fresh.load_state_dict(s.state_dict())
    texts = ["a person dance spins", "a person boxer punches"]
    greedy = GenerationSettings(do_sample=False, max_new_tokens=5)
    assert [c.tolist() for c in s.generate(texts, greedy)] == \
        [c.tolist() for c in fresh.generate(texts, greedy)]
    return fresh


def test_o_lora_keeps_earlier_loras_and_logs_both_terms(backbone):
    s = _strategy("o_lora", backbone, lr=5e-3)
    stream = _scenario(2, 8).train_stream
    s.train(stream[0])
    before = _params(s, "exp0")
    s.train(stream[1])
    after = _params(s, "exp0")
    assert all(torch.equal(before[n], after[n]) for n in before)
    new = _params(s, "exp1")
    assert any("lora_B" in n and new[n].abs().sum() > 0 for n in new)   # the new one trained
    last = s.history[-1]
    assert "orth_loss" in set(last) and last["orth_loss"] > 0       # lambda2 = 0: no l2 term
    assert s.bank.experts == ["exp0", "exp1"]
    assert len(s.generate(["a person dance spins"], None)) == 1
    assert _assert_restores(s, backbone).bank.experts == ["exp0", "exp1"]


def test_epi_routes_held_out_prompts_to_their_task(backbone):
    s = _strategy("epi", backbone)
    for task in range(3):           # no training needed: routing uses the frozen backbone
        exp = type("Exp", (), {"dataset": _items(task, 30, seed=0)})()
        s.before_experience(exp)
        s.after_experience(exp)
        s.exp_counter += 1
    rng = np.random.default_rng(7)
    truth = np.repeat(np.arange(3), 20)
    texts = [_sentence(rng, t) for t in truth]
    acc = (s.predict_task(texts) == truth).mean()
    assert acc >= 0.9, acc
    from benchmark.backbone import GenerationSettings

    out = s.generate(texts[::20], GenerationSettings(max_new_tokens=4))
    assert len(out) == 3 and list(s.last_routing) == [0, 1, 2]
    fresh = _assert_restores(s, backbone)
    assert (fresh.predict_task(texts) == s.predict_task(texts)).all()


def test_lwf_teacher_is_previous_model_and_swap_restores_student(backbone):
    s = _strategy("lwf_lora", backbone, lr=5e-3)
    stream = _scenario(2, 8).train_stream
    s.train(stream[0])
    batch = s.collate(_items(0, 3, seed=2))
    s.model.eval()
    with torch.no_grad():
        prev = s.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    s.train(stream[1])
    student = _params(s, "seq")
    teacher = s.teacher_logits(batch)
    assert torch.allclose(teacher, prev, atol=1e-5)
    assert all(torch.equal(student[n], p) for n, p in _params(s, "seq").items())
    assert s.history[-1]["extra_loss"] > 0
    _assert_restores(s, backbone)


def test_replay_buffer_fills_and_batches_mix_memory(backbone):
    s = _strategy("replay", backbone, mem_size=6, replay_batch_size=3)
    stream = _scenario(2, 8).train_stream
    s.train(stream[0])
    assert len(s.buffer) == 6 and {it["subset"] for it in s.buffer.items} == {0}
    s.is_training = True
    batch = s.collate(_items(1, 2, seed=3))
    assert batch["input_ids"].shape[0] == 5 and batch["subset"].tolist().count(0) == 3
    state = s.state_dict()["plugins"]["replay"]["buffer"]
    assert state["n_seen"] == 8
    s.is_training = False
    assert [it["id"] for it in _assert_restores(s, backbone).buffer.items] == \
        [it["id"] for it in s.buffer.items]


def test_ewc_strategy_penalises_drift(backbone):
    s = _strategy("ewc", backbone, lr=5e-3, ewc_lambda=1e4, batch_size=4)
    stream = _scenario(2, 8).train_stream
    s.train(stream[0])
    assert len(s.ewc.terms) == 1
    assert s.ewc_plugin.loss_terms(s, None, None)["ewc"].item() == pytest.approx(0.0, abs=1e-12)
    s.train(stream[1])
    assert s.history[-1]["extra_loss"] > 0 and len(s.ewc.terms) == 2
    assert len(_assert_restores(s, backbone).ewc.terms) == 2


def test_o_lora_lr_first_task_then_a_tenth_as_the_reference(backbone):
    s = _strategy("o_lora", backbone, lr=2e-3)
    stream = _scenario(2, 8).train_stream
    s.train(stream[0])
    assert s.optimizer.param_groups[0]["lr"] == pytest.approx(2e-3)
    s.train(stream[1])
    assert s.optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    s = _strategy("o_lora", backbone, lr=2e-3, later_lr_scale=1.0)
    s.exp_counter = 1
    assert s.experience_lr() == pytest.approx(2e-3)


def test_ewc_fisher_is_the_per_sample_empirical_fisher(backbone):
    s = _strategy("ewc", backbone, lr=5e-3, batch_size=4, fisher_samples=0)
    items = _items(0, 4, seed=5)
    exp = type("Exp", (), {"dataset": items})()
    s.before_experience(exp)
    s.experience = exp
    s.ewc_plugin.after_training_exp(s)            # what train() calls after the experience
    named = s.trainable_named_parameters()
    s.model.eval()
    manual = {n: torch.zeros_like(p) for n, p in named}
    for it in items:                      # mean over samples of the squared per-sample gradient
        b = s.collate([it])
        loss = s.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                       labels=b["labels"]).loss
        for (n, _), g in zip(named, torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)):
            if g is not None:
                manual[n] += g.detach() ** 2 / len(items)
    got = s.ewc.terms[0]
    assert any(manual[n].abs().sum() > 0 for n in manual)
    for n in manual:
        torch.testing.assert_close(got[n]["fisher"], manual[n], rtol=1e-4, atol=1e-10)


def test_epi_distance_is_the_minimum_over_class_means(backbone):
    """Scenario 0 holds two classes far apart (mean in the middle), scenario 1 one class near
    that middle: a prompt at one of scenario 0's classes goes to scenario 0 with per-class
    means (the reference) and to scenario 1 with one mean per scenario."""
    rng = np.random.default_rng(0)
    centres = {(0, 0): (-5.0, 0.0), (0, 1): (5.0, 0.0), (1, 0): (1.0, 0.0)}
    feats = {}
    for (task, cls), c in centres.items():
        for i in range(10):
            feats[f"t{task}c{cls}i{i}"] = np.array(c) + rng.normal(scale=0.1, size=2)
    feats["query"] = np.array([5.0, 0.0])
    for per_class, expect in ((True, 0), (False, 1)):
        s = _strategy("epi", backbone, per_class=per_class)
        s.prompt_features = lambda texts: torch.tensor(np.stack([feats[t] for t in texts]))
        for task in range(2):
            items = [{"text": t, "emotion": int(t[3])} for t in feats if t.startswith(f"t{task}")]
            exp = type("Exp", (), {"dataset": items})()
            s.after_experience(exp)                 # routing only: no adapter needed
            s.exp_counter += 1
        assert s.predict_task(["query"])[0] == expect, per_class
