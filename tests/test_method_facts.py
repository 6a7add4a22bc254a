"""Method facts live on the strategy classes: no module of the foundation, the evaluators, the
leaderboard or the harness names a registered method; the registry's queries give the paper's
Table 2 order, the bounds and the display names; the leaderboard reads the facts from
result.json (``method_info``), falling back to the registry for older result files.  That the
runner writes ``method_info`` is checked on a real run in tests/test_runner.py."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from benchmark.io import DataError
from benchmark.strategy import registry
from benchmark.strategy.base import MotionLMStrategy
from benchmark.strategy.plugins import PLUGINS
from leaderboard import methods as lb_methods
from leaderboard_fakes import make_fake_run  # tests/ is on sys.path (rootdir conftest)

REPO = Path(__file__).resolve().parents[1]
# the layers that must name no method (the strategies live in baselines/ and methods/)
SCANNED = ("benchmark", "evaluators", "leaderboard", "harness")
PAPER_ORDER = ["mtl", "seq_lora", "lwf_lora", "epi", "o_lora", "prog_prompt", "sapt",
               "es_moe", "es_moe_no_cged", "es_moe_no_samoe", "es_moe_no_emo_loss"]


@pytest.fixture(scope="module")
def names() -> set[str]:
    registry.discover()
    assert not registry.IMPORT_ERRORS, registry.IMPORT_ERRORS
    return set(registry.available())


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}


def method_literals(source: str, methods: set[str]) -> list[tuple[int, str, str]]:
    """(line, name, literal) for every string literal (docstrings aside; f-string parts
    included) holding a word that is one of ``methods``."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            for word in sorted(methods & set(re.findall(r"\w+", node.value))):
                out.append((node.lineno, word, node.value))
    return out


def test_the_scan_finds_a_method_name_and_skips_docstrings():
    src = ('"""Module doc: seq_lora."""\n'
           'def f():\n    """es_moe is fine here."""\n    # mtl in a comment\n'
           '    return ["x", "mtl", f"{1}+es_moe"]\n')
    assert [(line, word) for line, word, _ in method_literals(src, {"mtl", "es_moe", "seq_lora"})] \
        == [(5, "mtl"), (5, "es_moe")]


def test_no_module_outside_the_strategies_names_a_method(names):
    # A registered method that shares its name with a registered CL plugin (replay, ewc: the
    # baselines that are SeqLoRA + that plugin) is not scanned: in these layers the word names the
    # plugin (`--with replay`, the label `es_moe+replay`, the plugin registry itself).
    methods = names - set(PLUGINS)
    assert {"mtl", "seq_lora", "es_moe"} <= methods
    found = [f"{path.relative_to(REPO)}:{line}: {word!r} in {text[:60]!r}"
             for pkg in SCANNED for path in sorted((REPO / pkg).rglob("*.py"))
             for line, word, text in method_literals(path.read_text(), methods)]
    assert not found, ("method names belong to the strategy classes (display_name, paper_row, "
                       "role; benchmark.strategy.registry queries them):\n" + "\n".join(found))


def test_paper_methods_are_the_table2_rows_in_order(names):
    assert registry.paper_methods() == PAPER_ORDER
    assert [registry.method_info(m)["paper_row"] for m in PAPER_ORDER] == list(range(1, 12))
    assert registry.method_info("expert_gate")["paper_row"] is None


def test_roles_and_display_names(names):
    assert registry.with_role("upper_bound") == ["mtl"]
    assert registry.with_role("lower_bound") == ["seq_lora"]
    assert registry.role_method("lower_bound") == "seq_lora"
    assert "es_moe" in registry.with_role("method") and "mtl" not in registry.with_role("method")
    # facts are the class's own: the SeqLoRA subclasses are not lower bounds
    for sub in ("lwf_lora", "replay", "ewc"):
        assert registry.method_info(sub)["role"] == "method"
    assert registry.display_name("es_moe") == "ES-MoE"
    assert registry.display_name("o_lora") == "O-LoRA"
    assert registry.method_info("es_moe_no_emo_loss") == {
        "display_name": "w/o L_emo", "latex_name": r"w/o $\mathcal{L}_{emo}$", "role": "method",
        "paper_row": 11}
    with pytest.raises(ValueError, match="unknown role"):
        registry.with_role("joint")
    assert lb_methods.ROLES == registry.ROLES          # the leaderboard's copy (no torch import)


def _register(name: str, **facts):
    cls = type(f"Fake_{name}", (MotionLMStrategy,), {"__module__": __name__, **facts})
    try:
        return registry.register_strategy(name)(cls)
    finally:
        registry._REGISTRY.pop(name, None)


def test_bad_facts_are_refused_at_registration():
    with pytest.raises(ValueError, match="role 'joint' is not one of"):
        _register("fake_role", role="joint")
    with pytest.raises(TypeError, match="paper_row must be a row number"):
        _register("fake_row", paper_row="3")
    with pytest.raises(TypeError, match="display_name must be a string"):
        _register("fake_display", display_name=3)
    assert _register("fake_ok", display_name="Fake", paper_row=12).paper_row == 12


def test_two_methods_on_one_paper_row_are_an_error(names, monkeypatch):
    cls = type("Twin", (MotionLMStrategy,), {"__module__": __name__, "paper_row": 2})
    monkeypatch.setitem(registry._REGISTRY, "twin",
                        registry.StrategyEntry("twin", cls, cls.config_class, __name__))
    with pytest.raises(DataError, match="'seq_lora' and 'twin' both claim paper_row 2"):
        registry.paper_methods()
    with pytest.raises(DataError, match="2 registered methods have role"):
        monkeypatch.setattr(cls, "role", "lower_bound")
        registry.role_method("lower_bound")


def test_leaderboard_reads_method_info_and_falls_back_to_the_registry(tmp_path, monkeypatch):
    from leaderboard.runs import load_run
    from leaderboard.tables import display_name, method_sort_key
    from leaderboard.validity import bound

    monkeypatch.setattr(lb_methods, "_FROM_RESULTS", {})
    info = {"display_name": "Mine", "latex_name": "", "role": "upper_bound", "paper_row": 3}
    mine = load_run(make_fake_run(tmp_path / "a", "my_method", result_extra={"method_info": info}))
    old = load_run(make_fake_run(tmp_path / "b", "seq_lora"))      # written before method_info
    assert display_name("my_method") == "Mine" and display_name("my_method+replay") == "Mine + Replay"
    assert display_name("seq_lora") == "SeqLoRA" and display_name("not_registered") == "not_registered"
    assert sorted(["es_moe", "not_registered", "my_method", "mtl"], key=method_sort_key) == \
        ["mtl", "my_method", "es_moe", "not_registered"]
    assert bound([mine, old], "upper_bound") == "my_method"
    assert bound([mine, old], "lower_bound") == "seq_lora"
    assert bound([old], "upper_bound") == "mtl"            # none among the runs: the registry's
    bad = make_fake_run(tmp_path / "c", "x", result_extra={"method_info": {"role": "boss"}})
    with pytest.raises(DataError, match="method_info"):
        load_run(bad)

