"""Gradient checkpointing changes no number; perf/gpu_check.py runs end to end on the CPU with
a tiny config (its GPU path is the same code with --device cuda); a missing GPU is a clear error."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _loss_and_grads(backbone_dir, checkpointing: bool):
    from benchmark.backbone import MotionLM
    from benchmark.strategy import lora
    from benchmark.strategy.config import StrategyConfig

    torch.manual_seed(0)
    mlm = MotionLM.from_pretrained(backbone_dir, 16)
    if checkpointing:
        mlm.enable_gradient_checkpointing()
    lora.add_adapter(mlm, "exp0", lora.lora_config(StrategyConfig(lora_dropout=0.1), mlm))
    mlm.model.train()
    batch = mlm.build_batch(["a person walks forward happily", "someone jumps with joy"],
                            [[1, 2, 3, 4], [5, 6, 7]])
    torch.manual_seed(1)                     # the same dropout draws in both runs
    loss = mlm.model(**batch).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in mlm.model.named_parameters() if p.requires_grad}
    return loss.detach(), grads, mlm


def test_gradient_checkpointing_changes_no_number(tiny_backbone_dir):
    base_loss, base_grads, _ = _loss_and_grads(tiny_backbone_dir, False)
    loss, grads, mlm = _loss_and_grads(tiny_backbone_dir, True)
    assert any(getattr(m, "gradient_checkpointing", False) for m in mlm.model.modules())
    assert base_grads and grads.keys() == base_grads.keys()
    assert torch.equal(loss, base_loss)
    for n in grads:
        torch.testing.assert_close(grads[n], base_grads[n], rtol=0, atol=1e-7, msg=n)


def test_gradient_checkpointing_is_not_in_the_config_hash():
    from harness.run_config import EXECUTION_FIELDS, RunConfig

    assert "gradient_checkpointing" in EXECUTION_FIELDS
    cfg = RunConfig.from_options(method="m", out="o")
    assert cfg.execution.gradient_checkpointing is False
    assert "gradient_checkpointing" not in cfg.hashed()


def test_gpu_check_dry_run_on_cpu():
    cmd = [sys.executable, str(REPO / "perf" / "gpu_check.py"), "--device", "cpu", "--layers", "1",
           "--hidden", "64", "--vocab", "300", "--dtype", "float32", "--batch", "2", "--motion", "6",
           "--gen-tokens", "3", "--steps", "1", "--experts", "2", "--codes", "16", "--skip-run"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "gradient checkpointing off" in out and "ES-MoE (2 experts) / SeqLoRA: step time x" in out
    assert "seq_lora  step" in out and "es_moe    step" in out and out.strip().endswith("gpu_check: OK")
    # with gradient checkpointing SeqLoRA is measured; ES-MoE's expert bank refuses it clearly
    res = subprocess.run(cmd + ["--gradient-checkpointing"], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "seq_lora  step" in res.stdout and "es_moe    not measured: gradient checkpointing" in res.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without a GPU")
def test_gpu_check_without_a_gpu_is_a_clear_error():
    res = subprocess.run([sys.executable, str(REPO / "perf" / "gpu_check.py"), "--device", "cuda"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert res.returncode == 2 and "torch sees no GPU. Fix:" in res.stderr
