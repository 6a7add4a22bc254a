"""The released reference stages: shipped with checksums, used instead of training when the
recipe matches (a run starts without training any stage), refused when changed, never used with
--rebuild-stages, and the corpus must be the one they were made on."""
from __future__ import annotations

import json
import shutil

import pytest

from benchmark import reference
from benchmark.io import DataError
from harness.run_config import RunConfig


def _recipe(cfg: RunConfig) -> dict:
    from benchmark.backbone import TinyBackboneConfig
    from benchmark.backbone.pretrain import PretrainConfig

    st = cfg.stages
    return reference.recipe(stream=st.stream, corpus_scale=st.corpus_scale,
                            scenario_style=st.scenario_style, tokenizer_preset=st.tokenizer_preset,
                            evaluator_preset=st.evaluator_preset,
                            tiny_config=TinyBackboneConfig(**st.tiny_backbone),
                            pretrain=PretrainConfig(**(st.pretrain or {"recipe": "none"})))


@pytest.fixture
def shipped(tmp_path, tiny_corpus, tiny_tokenizer, tiny_evaluator, tiny_backbone_dir, monkeypatch):
    """A reference version of the `test` preset's recipe, released into a temporary root."""
    cfg = RunConfig.from_options(method="seq_lora", out=str(tmp_path / "run"), preset="test",
                                 cache=str(tmp_path / "cache"))
    root = tmp_path / "reference_stages"
    reference.release({"tokenizer": tiny_tokenizer.saved_dir, "evaluator": tiny_evaluator.root,
                       "backbone": tiny_backbone_dir}, _recipe(cfg), tiny_corpus.content_hash,
                      {}, version="l2emg-ref-test", root=root)
    monkeypatch.setattr(reference, "ROOT", root)
    return cfg, root


def test_a_release_verifies_and_a_changed_file_is_refused(shipped):
    cfg, root = shipped
    meta = reference.find(_recipe(cfg), root)
    assert meta["version"] == "l2emg-ref-test" and set(reference.verify(meta, root)) == set(reference.STAGES)
    assert reference.find({**_recipe(cfg), "corpus_scale": 0.5}, root) is None   # another recipe
    weights = next(p for p in (root / "l2emg-ref-test" / "evaluator").iterdir() if p.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes() + b"x")
    with pytest.raises(DataError, match="checksum"):
        reference.verify(meta, root)


def test_a_run_on_shipped_stages_trains_no_stage(shipped, monkeypatch):
    from harness.runner import build_run_stages

    cfg, root = shipped

    def refuse(*args, **kwargs):
        raise AssertionError("a stage was trained although the reference stages were shipped")

    import benchmark.backbone as backbone
    import benchmark.tokenizer as tokenizer
    import evaluators

    for module, name in ((tokenizer, "train_tokenizer"), (evaluators, "train_evaluator"),
                         (backbone, "build_tiny_backbone")):
        monkeypatch.setattr(module, name, refuse)
    stages, codes = build_run_stages(cfg)
    assert stages.version == "l2emg-ref-test"
    assert str(stages.backbone).startswith(str(root))
    assert not (cfg.execution.cache and (root.parent / "cache" / "tokenizer").exists())
    assert codes                                   # the stream is ready to train on
    # --rebuild-stages trains them here instead (and is recorded as such)
    with pytest.raises(AssertionError, match="a stage was trained"):
        build_run_stages(cfg.replace(rebuild_stages=True))


def test_another_corpus_is_refused_in_one_line(shipped):
    cfg, root = shipped
    meta = reference.find(_recipe(cfg), root)
    with pytest.raises(DataError, match="reference stages l2emg-ref-test were made on"):
        reference.check_corpus(meta, "0000000000000000")


def test_the_package_ships_the_default_reference():
    """The shipped default reference (if released) is complete and its checksums match."""
    meta = reference.manifest()
    if meta is None:
        pytest.skip("no reference version shipped")
    assert set(reference.verify(meta)) == set(reference.STAGES)
    from harness.run_config import DEFAULT_PRESET

    assert reference.find(_recipe(RunConfig.from_options(method="seq_lora", out=".",
                                                         preset=DEFAULT_PRESET))) == meta


def test_the_shipped_stages_load_to_the_manifests_stage_hashes():
    """The shipped tokenizer and evaluator load (no pickle for the tokenizer: safetensors) and their
    content hashes are the ones every reference run records."""
    meta = reference.manifest()
    if meta is None:
        pytest.skip("no reference version shipped")
    from benchmark.tokenizer import MotionTokenizer
    from evaluators import Evaluator

    folders = reference.verify(meta)
    assert MotionTokenizer.load(folders["tokenizer"]).content_hash == meta["stage_hashes"]["tokenizer"]
    assert Evaluator.load(folders["evaluator"]).content_hash == meta["stage_hashes"]["evaluator"]
    weights = [rel for rel in meta["files"] if rel.split("/")[0] in ("tokenizer", "backbone")
               and rel.endswith((".pt", ".bin", ".safetensors"))]
    assert weights and all(rel.endswith(".safetensors") for rel in weights)


@pytest.mark.slow
def test_the_default_corpus_hashes_to_the_shipped_reference(tmp_path):
    """Built here (any thread count: tests/test_corpus_determinism.py), the default corpus is the
    one the reference stages were made on."""
    meta = reference.manifest()
    if meta is None:
        pytest.skip("no reference version shipped")
    from harness.stages import corpus_stage

    r = meta["recipe"]
    corpus = corpus_stage(tmp_path, None, r["corpus_scale"], 0, r["scenario_style"], r["stream"])
    assert corpus.content_hash == meta["corpus_hash"]
    json.dumps(meta)
    shutil.rmtree(tmp_path / "corpus", ignore_errors=True)
