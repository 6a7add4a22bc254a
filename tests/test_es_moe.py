"""ES-MoE (methods/es_moe): gate, CGED, expert isolation, ablations, end-to-end runs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.io import DataError

TEXTS = ["a person walks happily forward", "someone jumps in anger", "a sad man sits down slowly",
         "the dancer spins with joy", "a fearful person runs away", "he waves his hand calmly"]
SMALL = {"batch_size": 4, "d_key": 16, "d_attn": 16, "d_ffn": 32, "emo_hidden": 16, "n_dict": 4,
         "lora_dropout": 0.0}


# ---------------------------------------------------------------------- helpers
# two scenarios whose prompts share no word: their pooled token embeddings differ by construction
WALK = ["a person walks happily forward", "someone walks slowly in anger", "a sad man walks home",
        "the person walks with joy", "a fearful person walks away", "he walks calmly"]
DANCE = ["dancer spins twirls gracefully", "ballerina leaps spins proudly", "dancer twirls angrily",
         "ballerina spins sadly", "dancer leaps fearfully", "twirls leaps joyfully"]


def tiny_lm(hidden: int = 32, n_codes: int = 16, texts=None):
    from transformers import LlamaConfig, LlamaForCausalLM

    from benchmark.backbone import MotionLM, train_text_tokenizer

    tok = train_text_tokenizer(list(texts or TEXTS))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4,
                      max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      tie_word_embeddings=False)
    return MotionLM(LlamaForCausalLM(cfg), tok, n_codes)


def experiences(n_exp: int = 2, n_items: int = 8, n_codes: int = 16):
    """Avalanche experiences of MotionItem dicts (random codes, cycling texts/emotions)."""
    from avalanche.benchmarks.scenarios.generic_scenario import CLScenario, EagerCLStream
    from avalanche.benchmarks.utils import AvalancheDataset, DataAttribute

    from benchmark.streams import _make_experience_class

    Exp = _make_experience_class()
    rng = np.random.default_rng(0)
    exps = []
    for e in range(n_exp):
        items = [{"id": f"{e}_{i}", "features": rng.integers(0, n_codes, int(rng.integers(3, 8))),
                  "text": TEXTS[(i + e) % len(TEXTS)], "emotion": i % 7, "scenario": e,
                  "subset": e} for i in range(n_items)]
        data = AvalancheDataset([items], data_attributes=[
            DataAttribute([it["emotion"] for it in items], "targets")])
        exps.append(Exp(dataset=data, subset_name=f"S{e}", scenario_id=e))
    CLScenario([EagerCLStream("train", exps)])
    return exps


def strategy(name: str = "es_moe", texts=None, **overrides):
    from benchmark.strategy import discover, get_strategy, make_config

    discover()
    cfg = make_config(name, {**SMALL, **overrides})
    return get_strategy(name).cls(motion_lm=tiny_lm(texts=texts), config=cfg, seed=0)


def disjoint_experiences(n_items: int = 12, n_codes: int = 16):
    """Two experiences: S0 prompts from WALK, S1 prompts from DANCE (no shared word)."""
    from avalanche.benchmarks.scenarios.generic_scenario import CLScenario, EagerCLStream
    from avalanche.benchmarks.utils import AvalancheDataset, DataAttribute

    from benchmark.streams import _make_experience_class

    Exp = _make_experience_class()
    rng = np.random.default_rng(0)
    exps = []
    for e, texts in enumerate((WALK, DANCE)):
        items = [{"id": f"{e}_{i}", "features": rng.integers(0, n_codes, int(rng.integers(3, 8))),
                  "text": texts[i % len(texts)], "emotion": i % 7, "scenario": e, "subset": e}
                 for i in range(n_items)]
        data = AvalancheDataset([items], data_attributes=[
            DataAttribute([it["emotion"] for it in items], "targets")])
        exps.append(Exp(dataset=data, subset_name=f"S{e}", scenario_id=e))
    CLScenario([EagerCLStream("train", exps)])
    return exps


def snapshot(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


# ---------------------------------------------------------------------- gate
def test_keys_orthogonal_unit_at_init():
    from methods.es_moe.gate import ExpertGate

    gate = ExpertGate(32, d_key=16, max_experts=8)
    keys = torch.stack(list(gate.keys)).double()
    gram = keys @ keys.T
    assert (gram - torch.eye(8, dtype=torch.float64)).abs().max() < 1e-6
    with pytest.raises(ValueError):
        ExpertGate(32, d_key=4, max_experts=8)


def test_gate_weights_eq4_mask_topk():
    from methods.es_moe.gate import ExpertGate

    torch.manual_seed(0)
    gate = ExpertGate(32, d_key=16, max_experts=8)
    h = torch.randn(5, 32)
    scores = gate.scores(h, 6)
    full = gate(h, 6)                                 # Eq. 4: softmax over experts 1..i
    assert torch.allclose(full, torch.softmax(scores, -1), atol=1e-6)
    mask = torch.ones(5, 6, dtype=torch.bool)
    mask[:, 0] = False
    mask[2, 1:4] = False
    w = gate(h, 6, top_k=2, mask=mask)
    assert torch.allclose(w.sum(-1), torch.ones(5), atol=1e-6)
    assert (w[~mask] == 0).all()
    assert ((w > 0).sum(-1) <= 2).all()
    for b in range(5):                                # the kept ones are the top-2 allowed scores
        allowed = scores[b].masked_fill(~mask[b], float("-inf"))
        top = allowed.topk(2).indices
        assert set(torch.nonzero(w[b]).flatten().tolist()) == set(top.tolist())
        assert torch.allclose(w[b, top], torch.softmax(scores[b, top], -1), atol=1e-6)


def test_masking_schedule():
    from methods.es_moe.gate import ExpertGate, mask_probability

    assert mask_probability(0.5, 0.0) == 0.5 and mask_probability(0.5, 1.0) == 0.0
    assert mask_probability(0.5, 0.5) == pytest.approx(0.25)
    gate = ExpertGate(8, d_key=8, max_experts=8)
    keep = gate.random_mask(4000, 4, 0.3, torch.Generator().manual_seed(0))
    assert keep[:, -1].all()                          # the current expert is never masked
    assert abs((~keep[:, :-1]).float().mean().item() - 0.3) < 0.03


def test_diagnostics_logged_per_experience():
    s = strategy("es_moe", diag_prompts=4)
    for exp in experiences(2):
        s.train(exp)
    assert [d["experience"] for d in s.diagnostics] == [1, 2]
    d = s.diagnostics[-1]
    assert list(d["usage"]) == ["S0", "S1"] and all(len(u) == 2 for u in d["usage"].values())
    assert all(abs(sum(u) - 1) < 1e-5 for u in d["usage"].values())
    assert 0 <= d["gate_entropy"] <= np.log(2) + 1e-6 and 0 <= d["route_current"] <= 1
    assert 0 <= d["emo_acc"] <= 1 and d["h_over_x"] > 0
    h_norm = d["h_over_x"] * abs(d["tanh_alpha"])       # injection = tanh(a) h, as it is
    assert d["inject_over_x"] == pytest.approx(h_norm, rel=1e-3, abs=1e-7)
    row = s.history[-1]
    assert row["diag_gate_entropy"] == d["gate_entropy"] and "diag_usage_s2_e2" in row
    t = strategy("es_moe", diag_prompts=4)
    t.load_state_dict(s.state_dict())
    assert t.diagnostics == s.diagnostics
    off = strategy("es_moe", diag_prompts=0)
    off.train(experiences(1)[0])
    assert off.diagnostics == [] and "diag_gate_entropy" not in off.history[-1]


def test_dictionary_initialised_once():
    """The paper: K-means initialises the dictionary (on the first experience) and it stays."""
    s = strategy("es_moe")
    e0, e1 = experiences(2, n_items=8)
    s.train(e0)
    first = s.method_modules["cged"].dictionary.clone()
    calls = []
    fit = s.method_modules["cged"].fit_dictionary
    s.method_modules["cged"].fit_dictionary = lambda f: (calls.append(len(f)), fit(f))
    s.train(e1)
    assert calls == [] and torch.equal(first, s.method_modules["cged"].dictionary)


# ---------------------------------------------------------------------- CGED
def test_dictionary_is_kmeans_centres_then_refit():
    from sklearn.cluster import KMeans

    from methods.es_moe.cged import CGED

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(60, 12))
    cged = CGED(12, d_attn=8, n_dict=5, d_ffn=16, seed=3)
    cged.fit_dictionary(feats)
    ref = KMeans(n_clusters=5, random_state=3, n_init=4).fit(feats)
    assert cged.dictionary.shape == (5, 12)
    assert np.allclose(cged.dictionary.numpy(), ref.cluster_centers_, atol=1e-5)
    assert cged.counts.sum().item() == 60
    cged.fit_dictionary(rng.normal(loc=5.0, size=(40, 12)))          # next scenario: refit
    assert cged.dictionary.shape == (5, 12) and cged.counts.sum().item() == pytest.approx(100)
    assert (cged.dictionary.mean(1) > 2).any() and (cged.dictionary.mean(1) < 2).any()
    with pytest.raises(DataError):
        cged.fit_dictionary(np.full((3, 12), np.nan))
    with pytest.raises(DataError):
        cged.fit_dictionary(np.zeros((3, 7)))


def test_cged_equals_the_papers_formula_written_out():
    """The fused maps (proj_x, query2, proj_dict, grouped FFNs) compute exactly
    s_x = softmax(f(X) K_m^T / sqrt(a)) V_m over the sample's prompt tokens,
    s_m = softmax(g(X) K_g^T / sqrt(a)) V_g over the dictionary, h = W [FFN1(s_x); FFN2(s_m)] + b,
    here recomputed with one plain matmul per map, sliced out of the fused weights."""
    from methods.es_moe.cged import CGED

    torch.manual_seed(1)
    d, a, K = 12, 8, 5
    cged = CGED(d, d_attn=a, n_dict=K, d_ffn=16)
    cged.fit_dictionary(np.random.default_rng(0).normal(size=(30, d)))
    x = torch.randn(3, 6, d)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, :2] = False

    def lin(z, w, b):                                   # nn.Linear convention: w (out, in)
        return z @ w.T + b

    W, bias = cged.proj_x.weight, cged.proj_x.bias
    part = lambda i: (W[i * a:(i + 1) * a], bias[i * a:(i + 1) * a])  # noqa: E731
    grouped = lambda m, g, z: z @ m.weight[g] + m.bias[g]              # noqa: E731
    f = grouped(cged.query2, 0, torch.nn.functional.silu(lin(x, *part(0))))
    g = grouped(cged.query2, 1, torch.nn.functional.silu(lin(x, *part(1))))
    k_m, v_m = lin(x, *part(2)), lin(x, *part(3))
    dk, dv = cged.proj_dict.weight.split(a), cged.proj_dict.bias.split(a)
    k_g, v_g = lin(cged.dictionary, dk[0], dv[0]), lin(cged.dictionary, dk[1], dv[1])
    att = (f @ k_m.transpose(1, 2)) / a ** 0.5
    s_x = torch.softmax(att.masked_fill(~mask[:, None, :], float("-inf")), -1) @ v_m
    s_m = torch.softmax(g @ k_g.T / a ** 0.5, -1) @ v_g
    ffn = lambda i, z: grouped(cged.ffn_out, i, torch.nn.functional.silu(  # noqa: E731
        grouped(cged.ffn_in, i, z)))
    h = lin(torch.cat([ffn(0, s_x), ffn(1, s_m)], -1), cged.out.weight, cged.out.bias)
    with torch.no_grad():
        assert torch.allclose(cged(x, mask), h, atol=1e-5)
        x2 = x.clone()
        x2[1, 5] += 100.0                               # a masked key/value changes nothing
        assert torch.allclose(cged(x2, mask)[:, :5], cged(x, mask)[:, :5], atol=1e-5)


def test_emotion_loss_reaches_all_cged_parameters():
    from methods.es_moe.cged import CGED, masked_mean

    torch.manual_seed(0)
    cged = CGED(12, d_attn=8, n_dict=4, d_ffn=16)
    cged.fit_dictionary(np.random.default_rng(0).normal(size=(20, 12)))
    x = torch.randn(3, 7, 12)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[0, 4:] = False
    h = cged(x, mask)
    assert h.shape == (3, 7, 12)
    cged.emotion_loss(masked_mean(h, mask), torch.tensor([0, 3, 6])).backward()
    for name, p in cged.named_parameters():
        if name == "inject_gate":                    # only used by the LM input path
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ---------------------------------------------------------------------- strategy
def test_old_experts_bit_identical_and_only_current_trains():
    s = strategy("es_moe", mask_p0=0.5)
    e0, e1 = experiences(2)
    s.train(e0)
    bank, gate = s.bank, s.method_modules["gate"]
    old = snapshot(bank.parameters("expert0")) + [gate.keys[0].detach().clone()]
    unused = gate.keys[5].detach().clone()
    query = snapshot(gate.parameters())[:2]
    s.train(e1)
    now = list(bank.parameters("expert0")) + [gate.keys[0]]
    assert all(torch.equal(a, b) for a, b in zip(old, now))
    assert torch.equal(unused, gate.keys[5])
    assert not all(torch.equal(a, b) for a, b in zip(query, list(gate.parameters())[:2]))
    b1 = list(bank.parameters("expert1"))
    assert any(p.abs().sum() > 0 for p in b1[1::2])   # lora_B of the new expert left zero init
    assert s.experts == ["expert0", "expert1"]
    mem = s.memory_per_scenario()
    assert mem["key_bytes"] == 16 * 4 and mem["lora_bytes"] > 0


def test_one_expert_reduces_to_lora_plus_cged():
    s = strategy("es_moe")
    (e0,) = experiences(1)
    s.train(e0)
    s.model.eval()
    batch = s.motion_lm.build_batch(TEXTS[:3], [np.arange(4), np.arange(2), np.arange(5)])
    with torch.no_grad():
        x, pooled, _ = s.encode(batch["input_ids"], batch["attention_mask"])
        ids, am = batch["input_ids"], batch["attention_mask"]
        w = s.gate_weights(s.expert_scores(ids, am, pooled), train=False)
        assert torch.equal(w, torch.ones(3, 1))
        with s.routing(w):
            mixed = s.model(inputs_embeds=x, attention_mask=batch["attention_mask"]).logits
        s.bank.detach()                                # plain peft LoRA forward of expert0
        plain = s.model(inputs_embeds=x, attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(mixed, plain, atol=1e-5)


def test_lambda_zero_gives_emotion_head_no_gradient():
    for name, changes in (("es_moe_no_emo_loss", False), ("es_moe", True)):
        s = strategy(name, lr=1e-2)
        head = s.method_modules["cged"].emotion_head
        before = snapshot(head.parameters())
        s.train(experiences(1)[0])
        assert all(p.grad is None or p.grad.abs().sum() == 0 for p in head.parameters()) != changes
        same = all(torch.equal(a, b) for a, b in zip(before, head.parameters()))
        assert same != changes, name


def test_generation_routes_and_keeps_prompt():
    s = strategy("es_moe")
    for exp in experiences(2):
        s.train(exp)
    gen = s.motion_lm.generation_inputs(TEXTS[:2])
    with torch.no_grad():
        seq = s.routed_model().generate(gen["input_ids"], gen["attention_mask"], max_new_tokens=3,
                                    do_sample=False, pad_token_id=s.motion_lm.tokenizer.pad_token_id)
    assert torch.equal(seq[:, : gen["input_ids"].shape[1]], gen["input_ids"])
    out = s.generate(TEXTS[:3])
    assert len(out) == 3 and all(o.dtype == np.int64 for o in out)


def test_checkpoint_roundtrip_restores_bank_and_dictionary():
    s = strategy("es_moe")
    for exp in experiences(2):
        s.train(exp)
    state = s.state_dict()
    t = strategy("es_moe")
    t.load_state_dict(state)
    assert t.experts == s.experts
    assert torch.equal(t.method_modules["cged"].dictionary, s.method_modules["cged"].dictionary)
    s.model.eval(), t.model.eval()
    batch = s.motion_lm.generation_inputs(TEXTS[:2])
    with torch.no_grad():
        outs = []
        for st in (s, t):
            x, pooled, _ = st.encode(batch["input_ids"], batch["attention_mask"])
            w = st.gate_weights(st.expert_scores(batch["input_ids"], batch["attention_mask"],
                                                 pooled), train=False)
            with st.routing(w):
                outs.append(st.model(inputs_embeds=x, attention_mask=batch["attention_mask"]).logits)
    assert torch.allclose(outs[0], outs[1], atol=1e-6)


def test_ablation_switches():
    assert strategy("es_moe_no_samoe").bank is None
    s = strategy("es_moe_no_samoe")
    for exp in experiences(2):
        s.train(exp)
    assert s.bank is None and list(s.motion_lm.adapters) == ["shared"]
    s = strategy("es_moe_no_cged")
    assert "cged" not in s.method_modules
    s.train(experiences(1)[0])
    assert s.history[-1]["extra_loss"] == 0.0
    with pytest.raises(DataError):
        strategy("es_moe", d_key=4)


def test_bank_folded_per_sample_path_matches_einsum():
    """The expert bank's folded (B, E) path (used by ES-MoE) equals the per-token einsum path,
    sparse (top-k) and dense, with and without grad; the inference cache follows the gate."""
    from peft import LoraConfig

    from benchmark.strategy import lora
    from benchmark.strategy.experts import ExpertBank

    torch.manual_seed(0)
    mlm = tiny_lm()
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                     init_lora_weights=False)
    for name in ("e0", "e1", "e2", "e3"):
        lora.add_adapter(mlm, name, cfg, activate=False)
    bank = ExpertBank(mlm.model, ["e0", "e1", "e2", "e3"]).attach()
    ids = torch.randint(0, 20, (3, 6))
    sparse = torch.tensor([[0.7, 0.3, 0, 0], [0, 0, 0.4, 0.6], [0.5, 0, 0, 0.5]])
    dense = torch.softmax(torch.randn(3, 4), -1)
    for w in (sparse, dense):
        with bank.route(w[:, None, :].expand(3, 6, 4).contiguous()):
            ref = mlm.model(input_ids=ids).logits              # einsum path (per token)
        with bank.route(w):
            got = mlm.model(input_ids=ids).logits              # folded path
            with torch.no_grad():
                cached = [mlm.model(input_ids=ids).logits for _ in range(2)]
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(cached[0], ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(cached[1], ref, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def run_args(tiny_run_argv, tmp_path_factory):
    return [*tiny_run_argv, "--cache", str(tmp_path_factory.mktemp("esmoe_cache")),
            "--set", "n_dict=4"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["es_moe", "es_moe_no_cged", "es_moe_no_samoe",
                                  "es_moe_no_emo_loss"])
def test_l2emg_run_each_registered_name(name, run_args, tmp_path):
    import json

    from harness.cli import main

    out = tmp_path / name
    assert main(["run", "--method", name, "--out", str(out), *run_args]) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["method"] == name and res["n_experiences"] == 2
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["method_config"]["cged"] == (name != "es_moe_no_cged")
    assert cfg["method_config"]["samoe"] == (name != "es_moe_no_samoe")
    assert (cfg["method_config"]["lambda_emo"] == 0) == (name == "es_moe_no_emo_loss")


# --stop-after + --resume == uninterrupted for ES-MoE and its ablations (bank, keys, dictionary,
# masking RNG, anchors), at k = 1 and 2: tests/test_resume_matrix.py.


def test_emotion_head_is_sized_from_the_corpus_label_space():
    from benchmark.strategy import registry

    registry.discover()
    entry = registry.get_strategy("es_moe")
    cfg = registry.make_config("es_moe", {"lr": 1e-3})
    assert cfg.n_emotions == 0                                  # default: from the corpus
    emotions = tuple(f"style{k}" for k in range(18))            # e.g. Bandai-Namco's 18 styles
    s = entry.cls(motion_lm=tiny_lm(), config=cfg, label_spaces={"emotions": emotions})
    assert s.method_modules["cged"].emotion_head[-1].out_features == 18
    s7 = entry.cls(motion_lm=tiny_lm(), config=cfg)             # built by hand: the paper's 7
    assert s7.method_modules["cged"].emotion_head[-1].out_features == 7
    fixed = entry.cls(motion_lm=tiny_lm(), config=registry.make_config("es_moe", {"n_emotions": 5}),
                      label_spaces={"emotions": emotions})
    assert fixed.method_modules["cged"].emotion_head[-1].out_features == 5
