"""``l2emg reference`` / ``l2emg reproduce``: an unperturbed copy of the runs reproduces every
number; a perturbed one is flagged per number; other stages are flagged."""
from __future__ import annotations

import json
import shutil

import pandas as pd

from harness.cli import main
from leaderboard.reproduce import aggregate, compare
from leaderboard_fakes import make_fake_run


def _grid(root, quality=0.3, **kw):
    for order in (1, 2, 3):
        make_fake_run(root, "seq_lora", order=order, quality=quality, noise=0.01, **kw)
    make_fake_run(root, "mtl", order=1, quality=0.5, **kw)
    return root


def test_reference_rows_have_the_t_ci_over_runs(tmp_path):
    table = aggregate([_grid(tmp_path / "ref")]).set_index(["system", "setting", "metric"])
    row = table.loc[("seq_lora", "unseen", "AR")]
    assert row.n_runs == 3 and row.ci_low < row["mean"] < row.ci_high
    assert len(row.config_hashes.split(";")) == 3


def test_reproduce_passes_a_copy_and_flags_a_perturbation(tmp_path, capsys):
    ref_runs = _grid(tmp_path / "ref")
    assert main(["reference", str(ref_runs), "--out", str(tmp_path / "reference.csv")]) == 0
    mine = tmp_path / "mine"
    shutil.copytree(ref_runs, mine)
    assert main(["reproduce", str(mine), "--reference", str(tmp_path / "reference.csv")]) == 0
    assert "inside the reference CI; stages are the reference ones" in capsys.readouterr().out

    # perturb one run's AR well beyond the CI: that number (and only numbers of that system) is OUT
    res_path = mine / "mtl" / "unseen" / "order1" / "seed0" / "result.json"
    res = json.loads(res_path.read_text())
    res["aggregates"]["AR"] += 0.2
    res_path.write_text(json.dumps(res))
    table = compare([mine], tmp_path / "reference.csv").set_index(["system", "metric"])
    assert not table.loc[("mtl", "AR"), "inside"]
    assert table.drop(("mtl", "AR"))["inside"].all()
    assert main(["reproduce", str(mine), "--reference", str(tmp_path / "reference.csv")]) == 1
    assert "OUT mtl" in capsys.readouterr().out


def test_reproduce_flags_other_stages(tmp_path, capsys):
    _grid(tmp_path / "ref")
    main(["reference", str(tmp_path / "ref"), "--out", str(tmp_path / "reference.csv")])
    _grid(tmp_path / "mine", stages={"evaluator": "rebuilt"})
    table = compare([tmp_path / "mine"], tmp_path / "reference.csv")
    assert table["inside"].all() and not table["same_stages"].any()
    assert main(["reproduce", str(tmp_path / "mine"), "--reference", str(tmp_path / "reference.csv")]) == 1
    assert "are NOT the reference ones" in capsys.readouterr().out


def test_a_bad_reference_file_is_refused(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    _grid(tmp_path / "mine")
    assert main(["reproduce", str(tmp_path / "mine"), "--reference", str(tmp_path / "bad.csv")]) == 2
    assert "lacks the column" in capsys.readouterr().err


def test_publish_makes_a_results_folder_from_runs(tmp_path):
    runs = _grid(tmp_path / "runs")
    note = tmp_path / "note.md"
    note.write_text("Registered before the runs: SeqLoRA forgets.")
    assert main(["publish", str(runs), "--out", str(tmp_path / "res"), "--title", "A pilot",
                 "--note", str(note), "--no-figures"]) == 0
    readme = (tmp_path / "res" / "README.md").read_text()
    assert readme.startswith("# A pilot") and "l2emg publish" in readme and "SeqLoRA forgets" in readme
    assert "SeqLoRA" in readme and "Chance" in readme and "## Validity" in readme
    ref = pd.read_csv(tmp_path / "res" / "reference.csv")
    assert set(ref["system"]) == {"seq_lora", "mtl"}
    assert (tmp_path / "res" / "leaderboard" / "leaderboard_wide.md").is_file()


def test_publish_puts_its_table_into_a_readme_block(tmp_path, capsys):
    from leaderboard.publish import README_BEGIN, README_END

    runs = _grid(tmp_path / "runs")
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n\nno block here\n")
    argv = ["publish", str(runs), "--out", str(tmp_path / "res"), "--title", "T", "--no-figures",
            "--readme", str(readme)]
    assert main(argv) == 2 and "results block" in capsys.readouterr().err
    readme.write_text(f"# Project\n\n{README_BEGIN}\nold table\n{README_END}\n\nafter\n")
    assert main(argv) == 0
    text = readme.read_text()
    table = (tmp_path / "res" / "readme_table.md").read_text()
    assert "old table" not in text and text.endswith(f"{README_END}\n\nafter\n")
    assert f"{README_BEGIN}\n{table}{README_END}" in text
    assert "| SeqLoRA |" in table and "| Chance |" in table and "l2emg publish" in table


def test_the_shipped_reference_results_are_the_default_grid_on_the_shipped_stages():
    """`l2emg reproduce`'s default file: the default grid (every paper system, test part, preset
    default) made on the shipped stages of the same version, a mean inside its CI per number."""
    from benchmark import reference as ref_stages
    from benchmark.strategy import registry
    from leaderboard.reproduce import SHIPPED, read_reference

    table = read_reference(SHIPPED)
    manifest = json.loads((ref_stages.ROOT / ref_stages.VERSION / ref_stages.MANIFEST).read_text())
    stages = {**manifest["stage_hashes"], "corpus": manifest["corpus_hash"]}
    assert set(table["stage_hashes"]) == {";".join(f"{k}={stages[k]}" for k in sorted(stages))}
    assert set(table["preset"]) == {"default"} and set(table["eval_part"]) == {"test"}
    registry.discover(())
    assert set(table["system"]) == set(registry.paper_methods())
    assert ((table["ci_low"] <= table["mean"]) & (table["mean"] <= table["ci_high"])).all()
    continual = table[(table["system"] != "mtl") & (table["metric"] == "AR")]
    assert (continual["n_runs"] == 3).all() and len(continual) == len(registry.paper_methods()) - 1


def test_reproduce_defaults_to_the_shipped_reference(tmp_path, capsys):
    """With no --reference, the shipped file is read: a run of another preset is refused as
    another protocol (exit 1), never compared silently."""
    runs = _grid(tmp_path / "mine")
    assert main(["reproduce", str(runs)]) == 1
    assert "protocol (preset, eval part) does NOT match" in capsys.readouterr().out


def test_runs_of_compares_each_run_with_its_published_twin(tmp_path, capsys):
    """--runs-of pairs runs by config hash: a copy is byte-identical, an edited matrix cell shows
    its difference, a run with no published twin is named; the exit status stays the CI check's."""
    from leaderboard.reproduce import compare_runs

    published = tmp_path / "published"
    for order in (1, 2, 3):
        make_fake_run(published, "seq_lora", order=order, quality=0.3, noise=0.01)
    main(["reference", str(published), "--out", str(tmp_path / "reference.csv")])
    mine = tmp_path / "mine"
    shutil.copytree(published, mine)
    table = compare_runs([mine], published).set_index("run")
    assert (table["identical"] == table["matrices"]).all() and table["aggregates_equal"].all()
    assert (table["max_abs_difference"] == 0).all() and (table["matrices"] > 0).all()

    run2 = mine / "seq_lora" / "unseen" / "order2" / "seed0"
    cells = pd.read_csv(run2 / "matrices" / "r_precision_top1.csv", index_col=0)
    cells.iloc[0, 0] += 0.01
    cells.to_csv(run2 / "matrices" / "r_precision_top1.csv")
    res = json.loads((mine / "seq_lora" / "unseen" / "order3" / "seed0" / "result.json").read_text())
    res["config_hash"] = "another"
    (mine / "seq_lora" / "unseen" / "order3" / "seed0" / "result.json").write_text(json.dumps(res))
    table = compare_runs([mine], published).set_index("run")
    row = table.loc["seq_lora/unseen/order2/seed0"]
    assert row.identical == row.matrices - 1 and abs(row.max_abs_difference - 0.01) < 1e-9
    assert pd.isna(table.loc["seq_lora/unseen/order3/seed0", "published"])
    assert main(["reproduce", str(mine), "--reference", str(tmp_path / "reference.csv"),
                 "--runs-of", str(published), "--out", str(tmp_path / "cmp.csv")]) == 0
    out = capsys.readouterr().out
    assert "runs: 2/3 have a published twin (same config hash); 1 byte-identical" in out
    assert "no published run with config hash another" in out
    assert (tmp_path / "cmp_runs.csv").is_file()
