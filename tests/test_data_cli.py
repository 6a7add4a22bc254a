"""``l2emg data ...`` end to end through :func:`harness.cli.main`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from benchmark.corpus.labels import EMOTIONS, SCENARIOS, TABLE1_COUNTS


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    """A small corpus (Table 1 proportions / 50) with random features, written like any corpus."""
    from benchmark.corpus import Motion, write_humanml3d

    rng = np.random.default_rng(1)
    motions, k = [], 0
    for s in SCENARIOS:
        for _ in range(TABLE1_COUNTS[s] // 50):
            motions.append(Motion(id=f"m{k:04d}", features=rng.normal(size=(10, 263)).astype(np.float32),
                                  texts=[f"a person moves {k}"], scenario=s, emotion=EMOTIONS[k % 7]))
            k += 1
    return write_humanml3d(tmp_path_factory.mktemp("cli") / "corpus", motions)


def test_splits_then_info(corpus_dir, tmp_path, capsys):
    from benchmark.corpus import load_corpus
    from benchmark.splits import load_manifest

    out = tmp_path / "unseen.csv"
    assert main(["data", "splits", "--data", str(corpus_dir), "--setting", "unseen", "--seed", "1",
                 "--share", "0.25", "--out", str(out)]) == 0
    corpus = load_corpus(corpus_dir)
    manifest = load_manifest(out, corpus)
    sizes = manifest.groupby("subset").size()
    assert all(sizes[s] == TABLE1_COUNTS[s] // 50 for s in SCENARIOS)
    assert "wrote unseen manifest" in capsys.readouterr().out

    assert main(["data", "info", "--data", str(corpus_dir), "--manifest", str(out),
                 "--csv", str(tmp_path / "t.csv")]) == 0
    text = capsys.readouterr().out
    assert "unseen subsets" in text and "Instrument Play" in text and "disgusted" in text
    table = pd.read_csv(tmp_path / "t.csv", index_col=0)
    assert table.loc["total", "total"] == len(corpus)
    assert table.loc["Daily Life", "total"] == TABLE1_COUNTS["Daily Life"] // 50


def test_info_without_manifest(corpus_dir, capsys):
    assert main(["data", "info", "--data", str(corpus_dir)]) == 0
    text = capsys.readouterr().out
    assert "rows: scenarios" in text and f"{sum(n // 50 for n in TABLE1_COUNTS.values())}" in text


def test_bad_manifest_is_one_line_error(corpus_dir, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,subset,part\nm0000,Dance,train\nm0000,Sports,test\n")
    assert main(["data", "info", "--data", str(corpus_dir), "--manifest", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"l2emg: error: {bad}:") and "more than once" in err and "Fix:" in err


def test_import_motionx_cli(tmp_path, capsys):
    from benchmark.corpus import load_corpus
    from benchmark.corpus.motionx import write_synthetic_smplx_model

    write_synthetic_smplx_model(tmp_path / "models" / "smplx" / "SMPLX_NEUTRAL.npz")
    (tmp_path / "m").mkdir()
    (tmp_path / "t").mkdir()
    clip = np.zeros((45, 322), np.float32)
    clip[:, 0] = np.pi / 2
    np.save(tmp_path / "m" / "a.npy", clip)
    (tmp_path / "t" / "a.txt").write_text("a person stands still\n")
    (tmp_path / "labels.csv").write_text("id,scenario,emotion\na,Shows,neutral\n")
    args = ["data", "import-motionx", "--motion-dir", str(tmp_path / "m"), "--texts-dir",
            str(tmp_path / "t"), "--labels", str(tmp_path / "labels.csv"), "--out",
            str(tmp_path / "out")]
    assert main(args + ["--smplx-model-dir", str(tmp_path / "missing")]) == 2
    assert "SMPL-X model folder not found" in capsys.readouterr().err
    assert main(args + ["--smplx-model-dir", str(tmp_path / "models")]) == 0
    corpus = load_corpus(tmp_path / "out")
    assert corpus.ids == ["a"] and corpus.features("a").shape == (29, 263)


@pytest.mark.slow
def test_synth_command(tmp_path, capsys):
    from benchmark.corpus import load_corpus

    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--scale", "0.004", "--seed", "0",
                 "--jobs", "1"]) == 0
    assert f"wrote {len(load_corpus(out))} motions" in capsys.readouterr().out
    assert main(["data", "synth", "--out", str(out), "--scale", "0.004"]) == 2  # exists
    assert "--overwrite" in capsys.readouterr().err


def test_synth_conflict_stream_then_splits(tmp_path, capsys):
    """`data synth --stream conflict` builds the conflict corpus; `data splits --stream conflict`
    makes pure Unseen subsets (share 0) and the default (paper) keeps the 0.2 share."""
    from benchmark.corpus import load_corpus
    from benchmark.splits import load_manifest

    out = tmp_path / "conflict"
    assert main(["data", "synth", "--out", str(out), "--scale", "0.01", "--stream", "conflict",
                 "--jobs", "1"]) == 0
    assert "wrote 160 motions" in capsys.readouterr().out
    corpus = load_corpus(out)
    assert corpus.meta["config"]["stream"] == "conflict" and "concept" in corpus.labels
    scen = corpus.labels.set_index("id")["scenario"]
    for stream, mixed in (("conflict", False), ("paper", True)):
        man = tmp_path / f"{stream}.csv"
        assert main(["data", "splits", "--data", str(out), "--setting", "unseen",
                     "--stream", stream, "--out", str(man)]) == 0
        m = load_manifest(man, corpus)
        assert (m["subset"].to_numpy() != scen.loc[m["id"]].to_numpy()).any() == mixed
    with pytest.raises(SystemExit):       # argparse refuses an unknown stream
        main(["data", "synth", "--out", str(tmp_path / "x"), "--stream", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
