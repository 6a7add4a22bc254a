"""Shared pytest fixtures.  Expensive artefacts (a small corpus, a trained tiny tokenizer and
evaluator) are built once per session and shared by every test that needs them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    env = os.environ.get("L2EMG_SHARED")
    if env:
        return Path(env)
    for cand in (REPO.parent / "shared", REPO / "shared"):
        if cand.exists():
            return cand
    return REPO.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def _threads():
    """Keep torch to the CI machine's two cores (and let helpers share a machine)."""
    try:
        import torch

        torch.set_num_threads(int(os.environ.get("L2EMG_TEST_THREADS", "2")))
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _shared_dir()


@pytest.fixture(scope="session")
def humanml3d_sample(shared_dir) -> Path:
    """The real HumanML3D motion shipped in ../shared/data (motion 012314 + Mean/Std)."""
    path = shared_dir / "data" / "humanml3d-sample"
    if not path.exists():
        pytest.fail(f"shared sample data missing at {path}; set L2EMG_SHARED to the shared/ folder")
    return path


@pytest.fixture(scope="session")
def tiny_corpus_dir(tmp_path_factory) -> Path:
    """A small synthetic corpus (a few hundred motions) built once per test session."""
    from benchmark.corpus import build_corpus

    out = tmp_path_factory.mktemp("corpus") / "synth"
    return build_corpus(out, scale=0.02, seed=0)


@pytest.fixture(scope="session")
def tiny_corpus(tiny_corpus_dir):
    from benchmark.corpus import load_corpus

    return load_corpus(tiny_corpus_dir)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_corpus, tmp_path_factory):
    """A VQ-VAE trained for a few hundred steps on the small corpus (seconds on CPU)."""
    from benchmark.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tokenizer") / "vq"
    tok = train_tokenizer(tiny_corpus, out, preset="test", seed=0)
    tok.saved_dir = out          # the folder, for tests that pass --tokenizer DIR
    return tok


@pytest.fixture(scope="session")
def tiny_evaluator(tiny_corpus, tmp_path_factory):
    """A T2M evaluator + emotion classifier trained briefly on the small corpus."""
    from evaluators import train_evaluator

    out = tmp_path_factory.mktemp("evaluator") / "t2m"
    return train_evaluator(tiny_corpus, out, preset="test", seed=0)


@pytest.fixture(scope="session")
def tiny_run_argv(tiny_corpus_dir, tiny_tokenizer, tiny_evaluator) -> list[str]:
    """CLI arguments of a seconds-long two-scenario run on the shared tiny stages (add --cache)."""
    return ["--preset", "test", "--data", str(tiny_corpus_dir), "--tokenizer",
            str(tiny_tokenizer.saved_dir), "--evaluator", str(tiny_evaluator.root),
            "--order", "Daily Life,Sports", "--max-test", "4", "--no-progress",
            "--threads", "1", "--set", "max_steps=2"]


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory) -> Path:
    """The tiny LLaMA + word-level tokenizer, built from fixed captions (no corpus needed)."""
    from benchmark.backbone import TinyBackboneConfig, build_tiny_backbone

    words = ["a person walks forward happily", "someone jumps with joy",
             "a sad man sits down slowly", "an angry person stomps and punches",
             "a fearful woman backs away", "the dancer spins in surprise"]
    out = tmp_path_factory.mktemp("backbone") / "tiny"
    return build_tiny_backbone(words, out, TinyBackboneConfig(hidden_size=64, intermediate_size=128))
