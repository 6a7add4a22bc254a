"""docs/es_moe.md's table "The paper and our choices" is the es_moe config: every field of
ESMoEConfig (beyond the shared StrategyConfig) appears exactly once in its `config` column, with
the default the code has."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "es_moe.md"
HEADING = "## The paper and our choices"


def paper_table(text: str) -> list[dict[str, str]]:
    """Rows of the first markdown table after HEADING, as {column: cell}."""
    if HEADING not in text:
        raise AssertionError(f"{DOC}: no section {HEADING!r}")
    lines = text.split(HEADING, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip().strip("|").split("|")])
    header, rows = table[0], table[2:]
    for need in ("paper says", "we do", "config", "why"):
        assert need in header, header
    return [dict(zip(header, r)) for r in rows]


def documented_defaults(rows: list[dict[str, str]]) -> dict[str, str]:
    """``name=value`` pairs (in backticks) of the config column, every name once."""
    out: dict[str, str] = {}
    for row in rows:
        for name, value in re.findall(r"`(\w+)=([^`]+)`", row["config"]):
            assert name not in out, f"{name} documented twice"
            out[name] = value
    return out


def parse(value: str, like):
    if isinstance(like, bool):
        assert value in ("true", "false"), value
        return value == "true"
    return type(like)(value)


def test_paper_table_matches_the_config_defaults():
    from benchmark.strategy.config import StrategyConfig
    from methods.es_moe.strategy import ESMoEConfig

    documented = documented_defaults(paper_table(DOC.read_text()))
    shared = {f.name for f in dataclasses.fields(StrategyConfig)}
    fields = {f.name: f for f in dataclasses.fields(ESMoEConfig) if f.name not in shared}
    assert set(documented) == set(fields), (sorted(set(documented) ^ set(fields)))
    defaults = ESMoEConfig()
    for name, value in documented.items():
        want = getattr(defaults, name)
        assert parse(value, want) == want, (name, value, want)


def test_table_parser_catches_a_wrong_default():
    rows = [{"paper says": "", "we do": "", "config": "`top_k=3`", "why": ""}]
    assert documented_defaults(rows) == {"top_k": "3"}
    assert parse("3", 2) != 2
    with pytest.raises(AssertionError):
        documented_defaults(rows + rows)
