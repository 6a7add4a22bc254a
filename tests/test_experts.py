"""ExpertBank over peft LoRA layers: equals peft for one expert, equals the naive weighted sum,
hard gates equal peft's single-adapter model, frozen experts get no gradient."""
from __future__ import annotations

import pytest
import torch
from peft import LoraConfig

from benchmark.backbone import MotionLM
from benchmark.strategy import lora
from benchmark.strategy.experts import ExpertBank, hard_gate, topk_softmax, uniform_gate


def _cfg(r=4):
    return LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False)   # random A and B: non-zero deltas


@pytest.fixture()
def experts(tiny_backbone_dir):
    torch.manual_seed(0)
    mlm = MotionLM.from_pretrained(tiny_backbone_dir, n_codes=8)
    for name in ("e0", "e1", "e2"):
        lora.add_adapter(mlm, name, _cfg(), activate=False)
    lora.set_active(mlm, "e0")
    return mlm


def _layer(mlm):
    bank = ExpertBank(mlm.model, ["e0", "e1", "e2"])
    name, layer = next(iter(bank.layers.items()))
    return bank, layer


def _naive(layer, x, w):
    """base(x) + sum_e w[..., e] * scaling_e * B_e(A_e(x)), one expert at a time."""
    out = layer.get_base_layer()(x)
    for e, name in enumerate(["e0", "e1", "e2"]):
        d = layer.lora_B[name](layer.lora_A[name](x)) * layer.scaling[name]
        out = out + d * w[..., e:e + 1]
    return out


def test_one_expert_weight_one_equals_peft(experts):
    x = torch.randn(2, 5, 64)
    peft_out = experts.model(input_ids=torch.randint(0, 50, (2, 5))).logits
    layer_ref = {n: m(x) for n, m in ExpertBank(experts.model, ["e0"]).layers.items()}
    bank = ExpertBank(experts.model, ["e0"]).attach()
    bank.set_weights(torch.ones(2, 1))
    for n, m in bank.layers.items():
        torch.testing.assert_close(m(x), layer_ref[n])
    ids = torch.randint(0, 50, (2, 5))
    with bank.route(torch.ones(2, 1)):
        mixed = experts.model(input_ids=ids).logits
    bank.detach()
    torch.testing.assert_close(mixed, experts.model(input_ids=ids).logits)
    assert peft_out.shape == mixed.shape


@pytest.mark.parametrize("shape", ["sample", "token", "shared"])
def test_weighted_sum_equals_naive(experts, shape):
    bank, layer = _layer(experts)
    x = torch.randn(3, 4, 64)
    w = {"sample": torch.rand(3, 3), "token": torch.rand(3, 4, 3), "shared": torch.rand(3)}[shape]
    full = w[:, None, :].expand(3, 4, 3) if shape == "sample" else w.expand(3, 4, 3)
    expected = _naive(layer, x, full)
    bank.attach().set_weights(w)
    torch.testing.assert_close(layer(x), expected)
    bank.detach()


def test_unequal_ranks_loop_path_matches(tiny_backbone_dir):
    torch.manual_seed(1)
    mlm = MotionLM.from_pretrained(tiny_backbone_dir, n_codes=8)
    lora.add_adapter(mlm, "e0", _cfg(2), activate=False)
    lora.add_adapter(mlm, "e1", _cfg(6), activate=False)
    bank = ExpertBank(mlm.model, ["e0", "e1"]).attach()
    layer = next(iter(bank.layers.values()))
    x, w = torch.randn(2, 3, 64), torch.rand(2, 2)
    expected = layer.get_base_layer()(x)
    for e, n in enumerate(["e0", "e1"]):
        expected = expected + layer.lora_B[n](layer.lora_A[n](x)) * layer.scaling[n] * w[:, None, e:e + 1]
    bank.set_weights(w)
    torch.testing.assert_close(layer(x), expected)


def test_hard_gate_equals_single_adapter_model(experts):
    ids = torch.randint(0, 50, (2, 6))
    lora.set_active(experts, "e2")
    ref = experts.model(input_ids=ids).logits
    bank = ExpertBank(experts.model, ["e0", "e1", "e2"]).attach()
    with bank.route(hard_gate(torch.tensor([2, 2]), 3)):
        torch.testing.assert_close(experts.model(input_ids=ids).logits, ref)
    with bank.route(uniform_gate(2, 3)):      # the sum differs from one expert
        assert not torch.allclose(experts.model(input_ids=ids).logits, ref)


def test_frozen_experts_get_no_grad(experts):
    bank = ExpertBank(experts.model, ["e0", "e1", "e2"])
    for name in ("e0", "e1", "e2"):
        bank.unfreeze(name)
    bank.freeze("e0")
    bank.attach()
    with bank.route(torch.tensor([0.5, 0.3, 0.2])):
        experts.model(input_ids=torch.randint(0, 50, (2, 5))).logits.sum().backward()
    assert all(p.grad is None for p in bank.parameters("e0"))
    for name in ("e1", "e2"):
        assert all(p.grad is not None for p in bank.parameters(name))
        assert any(p.grad.abs().sum() > 0 for p in bank.parameters(name))


def test_topk_softmax_known_answer():
    scores = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    w = topk_softmax(scores, k=2)
    e = torch.exp(torch.tensor([3.0, 2.0]))
    torch.testing.assert_close(w, torch.tensor([[0.0, e[0] / e.sum(), e[1] / e.sum(), 0.0]]))
    masked = topk_softmax(scores, k=1, mask=torch.tensor([[True, False, True, True]]))
    assert masked.tolist() == [[0.0, 0.0, 1.0, 0.0]]


def test_gate_errors(experts):
    bank = ExpertBank(experts.model, ["e0", "e1"]).attach()
    layer = next(iter(bank.layers.values()))
    with pytest.raises(RuntimeError, match="no gate"):
        layer(torch.randn(1, 2, 64))
    with pytest.raises(ValueError, match="experts"):
        bank.set_weights(torch.ones(1, 3))
    bank.set_weights(torch.ones(1, 5, 2))
    with pytest.raises(ValueError, match="per-token gate"):
        layer(torch.randn(1, 2, 64))


def test_topk_gathered_path_equals_dense_values_and_grads(experts):
    """Per-sample top-k weights (zeros for the others) take the gathered path (one gather per
    pass for all layers, frozen experts' factors cached); per-token weights of the same values
    take the dense per-layer path.  Logits and every gradient (trainable expert, gate weights)
    agree; the frozen experts' cached factors follow an in-place change of their weights."""
    bank = ExpertBank(experts.model, ["e0", "e1", "e2"])
    bank.freeze("e0")
    bank.freeze("e1")
    bank.unfreeze("e2")
    bank.attach()
    ids = torch.randint(0, 50, (3, 5))

    def run(per_token: bool):
        scores = torch.tensor([[0.3, -1.0, 2.0], [1.5, 0.2, 0.1], [-0.5, 0.4, 0.9]],
                              requires_grad=True)
        w = topk_softmax(scores, k=2)                # one zero per row
        gate = w[:, None, :].expand(3, 5, 3) if per_token else w
        for p in bank.parameters("e2"):
            p.grad = None
        with bank.route(gate):
            logits = experts.model(input_ids=ids).logits
            assert ("gathered" in bank._pass) != per_token
        (logits ** 2).mean().backward()
        return logits.detach(), scores.grad.clone(), [p.grad.clone() for p in bank.parameters("e2")]

    sparse, dense = run(False), run(True)
    assert sparse[1].abs().sum() > 0
    torch.testing.assert_close(sparse[0], dense[0])
    torch.testing.assert_close(sparse[1], dense[1])
    for a, b in zip(sparse[2], dense[2]):
        torch.testing.assert_close(a, b)
    assert all(p.grad is None for p in bank.parameters("e0"))
    assert set(bank._rows) == {"e0", "e1"}          # frozen rows were cached ...
    with torch.no_grad():
        for p in bank.parameters("e1"):
            p.mul_(3.0)                              # ... and an in-place change refreshes them
    torch.testing.assert_close(run(False)[0], run(True)[0])
    w = topk_softmax(torch.randn(3, 3), k=2)
    with torch.no_grad(), bank.route(w):             # generation: weights folded into B, cached
        first, again = experts.model(input_ids=ids).logits, experts.model(input_ids=ids).logits
    with torch.no_grad(), bank.route(w[:, None, :].expand(3, 5, 3)):
        torch.testing.assert_close(first, experts.model(input_ids=ids).logits)
    torch.testing.assert_close(again, first)
