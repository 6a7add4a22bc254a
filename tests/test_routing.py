"""Routing measurement (benchmark/strategy/routing.py), the task-free routers of
benchmark/strategy/experts.py, es_moe_routed and the expert_gate baseline."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from test_es_moe import DANCE, SMALL, WALK, disjoint_experiences, tiny_lm
from test_es_moe import strategy as es_moe_strategy


def strategy(name: str, texts=None, **overrides):
    """ES-MoE names with test_es_moe's small sizes; any other method with its defaults."""
    if name.startswith("es_moe"):
        return es_moe_strategy(name, texts=texts, **overrides)
    from benchmark.strategy import discover, get_strategy, make_config

    discover()
    small = {k: SMALL[k] for k in ("batch_size", "lora_dropout")}
    cfg = make_config(name, {**small, **overrides})
    return get_strategy(name).cls(motion_lm=tiny_lm(texts=texts), config=cfg, seed=0)


# ---------------------------------------------------------------------- routers
def test_autoencoder_selector_picks_the_right_expert_on_separable_features():
    """Three well-separated Gaussian clusters in 24-D, each living in its own 4-D subspace: each
    autoencoder learns its cluster, so held-out points of cluster k are reconstructed best by
    autoencoder k; the relevance rows sum to 1 and the state round-trips."""
    from benchmark.strategy.experts import AutoencoderSelector

    rng = np.random.default_rng(0)
    d, centres = 24, []
    bases = [np.linalg.qr(rng.normal(size=(d, 4)))[0] for _ in range(3)]
    centres = [rng.normal(scale=3.0, size=d) for _ in range(3)]

    def draw(k, n):
        return centres[k] + rng.normal(size=(n, 4)) @ bases[k].T + 0.05 * rng.normal(size=(n, d))

    sel = AutoencoderSelector(code=4, epochs=300, lr=1e-2, seed=0)
    for k in range(3):
        sel.add(draw(k, 60))
    test = np.concatenate([draw(k, 30) for k in range(3)])
    truth = np.repeat(np.arange(3), 30)
    err = sel.errors(torch.as_tensor(test))
    assert err.shape == (90, 3)
    assert (err.argmin(1).numpy() == truth).all()
    rel = sel.relevance(torch.as_tensor(test))
    assert torch.allclose(rel.sum(1), torch.ones(90, dtype=rel.dtype))
    assert sel.errors(torch.as_tensor(test), n_experts=2).shape == (90, 2)
    other = AutoencoderSelector()
    other.load_state_dict(sel.state_dict())
    assert torch.equal(other.errors(torch.as_tensor(test)), err)
    with pytest.raises(ValueError):
        sel.add(np.full((3, d), np.nan))


def test_prototype_router_is_the_shared_covariance_gaussian_log_likelihood():
    from benchmark.strategy.experts import PrototypeRouter

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 5)), rng.normal(loc=3.0, size=(50, 5))
    r = PrototypeRouter(shrinkage=0.0)
    r.add(a)
    r.add(b)
    scatter = sum((x - x.mean(0)).T @ (x - x.mean(0)) for x in (a, b))
    prec = np.linalg.pinv(scatter / (90 - 2))
    x = rng.normal(size=(7, 5))
    want = np.stack([-0.5 * np.einsum("nd,de,ne->n", x - m, prec, x - m)
                     for m in (a.mean(0), b.mean(0))], 1)
    np.testing.assert_allclose(r.log_likelihood(torch.as_tensor(x)).numpy(), want, rtol=1e-8)
    assert (r.log_likelihood(torch.as_tensor(b)).argmax(1) == 1).float().mean() > 0.95
    t = PrototypeRouter()
    t.load_state_dict(r.state_dict())
    np.testing.assert_allclose(t.log_likelihood(torch.as_tensor(x)).numpy(), want, rtol=1e-8)


# ---------------------------------------------------------------------- known answer
def _own(s, texts, j):
    from benchmark.strategy.routing import own_share

    w = s.routing_weights(texts)
    assert w.shape == (len(texts), 2)
    assert np.allclose(w.sum(1), 1, atol=1e-5)
    return own_share(w, j)


def test_two_separable_scenarios_correct_routers_reach_route_own_1():
    """Two scenarios whose prompts share no word (WALK, DANCE): a router on what carries the
    scenario sends every prompt of each to its own expert (route_own = 1 on both) for
    es_moe_routed (frozen pooled embeddings, prototypes) and expert_gate (autoencoders).  The
    paper's gate (es_moe) is measured as it is: a valid routing, whatever its value."""
    measured = {}
    for name in ("es_moe_routed", "expert_gate", "es_moe"):
        s = strategy(name, texts=WALK + DANCE, epochs=2, lr=1e-2)
        for exp in disjoint_experiences():
            s.train(exp)
        measured[name] = (_own(s, WALK, 0), _own(s, DANCE, 1))
    assert measured["es_moe_routed"] == (1.0, 1.0), measured
    assert measured["expert_gate"] == (1.0, 1.0), measured
    assert all(0 <= v <= 1 for v in measured["es_moe"]), measured


def test_routing_weights_none_for_unrouted_methods():
    s = strategy("es_moe_no_samoe")
    s.train(disjoint_experiences(n_items=4)[0])
    assert s.routing_weights(WALK) is None             # no bank: nothing routed
    t = strategy("seq_lora")
    t.train(disjoint_experiences(n_items=4)[0])
    assert t.routing_weights(WALK) is None


def test_es_moe_routed_only_deviation_is_the_scorer():
    """es_moe_routed keeps CGED (+ L_emo) and the bank; it has no Eq. 4 key gate; its expert
    scores are the router's log-likelihood of the frozen pooled prompt embedding; the router
    (one prototype per expert) survives a checkpoint."""
    s = strategy("es_moe_routed", texts=WALK + DANCE)
    assert "cged" in s.method_modules and "gate" not in s.method_modules
    for exp in disjoint_experiences(n_items=6):
        s.train(exp)
    assert len(s.router) == 2 and s.experts == ["expert0", "expert1"]
    assert "emo_loss" in s.history[-1]
    b = s.motion_lm.generation_inputs(WALK[:3])
    _, pooled, _ = s.encode(b["input_ids"], b["attention_mask"])
    scores = s.expert_scores(b["input_ids"], b["attention_mask"], pooled)
    feats = s.frozen_prompt_features(WALK[:3])
    assert torch.allclose(scores.double(), s.router.log_likelihood(feats), rtol=1e-5)
    t = strategy("es_moe_routed", texts=WALK + DANCE)
    t.load_state_dict(s.state_dict())
    assert len(t.router) == 2 and torch.equal(t.router.means[1], s.router.means[1])


# ---------------------------------------------------------------------- files
class _FakeRouted:
    """routing_weights from a table: text -> weights row."""

    def __init__(self, table):
        self.table = table

    def routing_weights(self, texts):
        return np.array([self.table[t] for t in texts], dtype=float)


def test_record_routing_writes_the_matrix_confusion_and_figure(tmp_path):
    from benchmark.strategy.routing import record_routing, routing_summary

    names = ["A", "B", "C"]
    tests = [{"texts": ["a1", "a2"]}, {"texts": ["b1", "b2"]}, {"texts": ["c1", "c2"]}]
    # after exp 1: one expert; after exp 2: two; after exp 3: three (soft weights, argmax counts)
    tables = [{"a1": [1.0], "a2": [1.0]},
              {"a1": [0.2, 0.8], "a2": [0.7, 0.3], "b1": [0.1, 0.9], "b2": [0.4, 0.6]},
              {"a1": [0.1, 0.1, 0.8], "a2": [0.6, 0.3, 0.1], "b1": [0.3, 0.5, 0.2],
               "b2": [0.2, 0.2, 0.6], "c1": [0.0, 0.0, 1.0], "c2": [0.1, 0.0, 0.9]}]
    for i, table in enumerate(tables):
        assert record_routing(tmp_path, _FakeRouted(table), tests, names, i + 1, 3)
        assert (tmp_path / "routing.csv").exists() == (i == 2)
    m = pd.read_csv(tmp_path / "matrices" / "route_own.csv", index_col=0)
    assert list(m.index) == ["after_1", "after_2", "after_3"] and list(m.columns) == names
    want = [[1.0, np.nan, np.nan], [0.5, 1.0, np.nan], [0.5, 0.5, 1.0]]
    np.testing.assert_allclose(m.to_numpy(), want)
    conf = pd.read_csv(tmp_path / "routing.csv", index_col=0)
    np.testing.assert_allclose(conf.to_numpy(), [[0.5, 0, 0.5], [0, 0.5, 0.5], [0, 0, 1]])
    np.testing.assert_allclose(conf.sum(1), 1)
    assert (tmp_path / "routing.png").read_bytes()[:4] == b"\x89PNG"
    summary = routing_summary(tmp_path)["routing"]
    assert summary["route_own_final"] == [0.5, 0.5, 1.0]
    assert summary["route_own"] == pytest.approx(2 / 3)
    # a resumed run re-recording experience 2 keeps row 1 and drops the stale rows after it
    record_routing(tmp_path, _FakeRouted(tables[1]), tests, names, 2, 3)
    assert list(pd.read_csv(tmp_path / "matrices" / "route_own.csv", index_col=0).index) == \
        ["after_1", "after_2"]
    # an unrouted strategy writes nothing
    empty = tmp_path / "none"

    class _Unrouted:
        def routing_weights(self, texts):
            return None

    assert not record_routing(empty, _Unrouted(), tests, names, 1, 3)
    assert not empty.exists() and routing_summary(empty) == {}


# ---------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def run_args(tiny_run_argv, tmp_path_factory):
    return [*tiny_run_argv, "--cache", str(tmp_path_factory.mktemp("routing_cache"))]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["epi", "sapt", "es_moe", "es_moe_no_cged", "es_moe_routed",
                                  "expert_gate", "seq_lora", "o_lora"])
def test_l2emg_run_writes_routing_for_every_routed_method(name, run_args, tmp_path):
    """Routed methods: matrices/route_own.csv (2 x 2, lower triangle measured, upper NaN),
    routing.csv (rows sum to 1), routing.png and result.json's "routing" block; unrouted ones
    (SeqLoRA; O-LoRA sums every expert with equal weights) write none of them."""
    from harness.cli import main

    out = tmp_path / name
    extra = ["--set", "n_dict=4"] if name.startswith("es_moe") else []
    assert main(["run", "--method", name, "--out", str(out), *run_args, *extra]) == 0
    res = json.loads((out / "result.json").read_text())
    routed = name not in ("seq_lora", "o_lora")
    assert (out / "matrices" / "route_own.csv").exists() == routed
    assert (out / "routing.csv").exists() == (out / "routing.png").exists() == routed
    assert ("routing" in res) == routed
    if not routed:
        return
    m = pd.read_csv(out / "matrices" / "route_own.csv", index_col=0).to_numpy()
    assert m.shape == (2, 2) and np.isnan(m[0, 1]) and np.isfinite(m[np.tril_indices(2)]).all()
    assert ((m[np.tril_indices(2)] >= 0) & (m[np.tril_indices(2)] <= 1)).all()
    conf = pd.read_csv(out / "routing.csv", index_col=0)
    assert conf.shape == (2, 2)
    np.testing.assert_allclose(conf.sum(1), 1)
    np.testing.assert_allclose(np.diag(conf.to_numpy()), m[-1])      # own = diagonal
    assert res["routing"]["route_own"] == pytest.approx(float(np.mean(m[-1])))
