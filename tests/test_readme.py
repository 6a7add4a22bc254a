"""The README is a user guide: at most 200 lines, a quick start of exactly two one-line commands
(the main job on the embedded default, and the tests), and `.ci/run` calls the second verbatim."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _quick_start() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 200


def test_quick_start_has_the_two_commands():
    main, tests = _quick_start()
    assert main.startswith("pip install -e . && l2emg bench")
    assert tests == "pip install -e '.[test]' && python -m pytest -q"
    assert tests in (REPO / ".ci" / "run").read_text().splitlines()


def test_the_main_command_runs_the_default_preset():
    from harness.pipeline import bench_args
    from harness.run_config import DEFAULT_PRESET
    import argparse

    parser = argparse.ArgumentParser()
    bench_args(parser)
    args = parser.parse_args(_quick_start()[0].split("l2emg bench", 1)[1].split())
    assert args.preset == DEFAULT_PRESET


def test_the_readme_results_table_is_the_published_one():
    """A results block in the README is exactly the ``readme_table.md`` that ``l2emg publish
    --readme`` wrote into the results folder it names (never a hand-edited table)."""
    from leaderboard.publish import README_BEGIN, README_END, TABLE_FILE

    text = (REPO / "README.md").read_text()
    blocks = re.findall(re.escape(README_BEGIN) + r"\n(.*?)" + re.escape(README_END), text, re.S)
    assert text.count(README_BEGIN) == len(blocks) and text.count(README_END) == len(blocks)
    for block in blocks:
        folder = re.search(r"\((results/[^,]+), made by", block).group(1)
        assert block == (REPO / folder / TABLE_FILE).read_text()
