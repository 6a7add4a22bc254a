"""Strategy protocol: registry + configs, LM training through Avalanche, hooks, SeqLoRA forgets,
checkpoint round trip, peft helpers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.backbone import MotionLM
from benchmark.io import DataError
from harness.run_config import DEFAULT_PRESET, RunConfig
from harness.runner import method_config_for
from benchmark.strategy import MotionLMStrategy, lora, registry
from benchmark.strategy.config import StrategyConfig
from strategy_fakes import fake_items, fake_scenario

REPO = Path(__file__).resolve().parents[1]
K = 16


@pytest.fixture()
def mlm(tiny_backbone_dir):
    return MotionLM.from_pretrained(tiny_backbone_dir, n_codes=K)


def _strategy(name, mlm, **overrides):
    registry.discover()
    values = {"lr": 3e-3, "epochs": 10, "batch_size": 8, "lora_dropout": 0.0, **overrides}
    entry = registry.get_strategy(name)
    return entry.cls(motion_lm=mlm, config=registry.make_config(name, values), device="cpu", seed=0)


def _loss(strategy, items) -> float:
    batch = strategy.collate(items)
    strategy.model.eval()
    with torch.no_grad():
        return float(strategy.model(input_ids=batch["input_ids"], labels=batch["labels"],
                                    attention_mask=batch["attention_mask"]).loss)


# ---------------------------------------------------------------------------- registry, configs
def test_discovery_finds_baselines_and_refuses_unknown():
    found = registry.discover()
    assert {"seq_lora", "mtl"} <= set(found)
    assert found["mtl"].cls.joint and not found["seq_lora"].cls.joint
    with pytest.raises(DataError, match="seq_lora"):
        registry.get_strategy("no_such_method")


def test_entry_point_strategy_is_discovered(tmp_path, monkeypatch):
    """A third-party package's ``l2emg.strategies`` entry point is imported by discover()."""
    import importlib.metadata

    (tmp_path / "l2emg_ep_fake.py").write_text(
        "from benchmark.strategy import MotionLMStrategy, register_strategy\n\n\n"
        "@register_strategy('ep_fake')\n"
        "class EPFake(MotionLMStrategy):\n"
        "    \"\"\"Installed through an entry point.\"\"\"\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [importlib.metadata.EntryPoint("fake", "l2emg_ep_fake", registry.ENTRY_POINT_GROUP),
           importlib.metadata.EntryPoint("broken", "l2emg_no_such_module", registry.ENTRY_POINT_GROUP)]
    seen = []

    def fake_entry_points(**kw):
        seen.append(kw.get("group"))
        return [e for e in eps if e.group == kw.get("group")]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    monkeypatch.setattr(registry, "IMPORT_ERRORS", {})
    found = registry.discover()
    assert seen == ["l2emg.strategies"]
    assert "ep_fake" in found and found["ep_fake"].module == "l2emg_ep_fake" and "seq_lora" in found
    assert any("broken" in k for k in registry.IMPORT_ERRORS)   # remembered, not fatal
    registry._REGISTRY.pop("ep_fake")


def test_discovery_uses_the_project_folders_not_sys_path(tmp_path, monkeypatch):
    """Another ``baselines`` package earlier on the path is not imported; one already imported
    from elsewhere is refused."""
    import subprocess
    import sys
    import types

    fake = tmp_path / "baselines"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('the wrong baselines package')\n")
    code = ("from benchmark.strategy import registry; r = registry.discover(); "
            "print(sorted(r)); print(registry.IMPORT_ERRORS)")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "'seq_lora'" in out and "'sapt'" in out and "wrong" not in out, out
    monkeypatch.setitem(sys.modules, "baselines", types.ModuleType("baselines"))
    sys.modules["baselines"].__file__ = str(fake / "__init__.py")
    with pytest.raises(DataError, match="different 'baselines' package"):
        registry.discover()


def test_capabilities_are_declared_on_the_class():
    found = registry.discover()
    caps = {n: e.cls.capabilities() for n, e in found.items()      # the project's own methods
            if e.module.startswith(("baselines.", "methods."))}
    assert caps["mtl"]["joint"] and caps["mtl"]["order_free"]
    assert not any(c["order_free"] for n, c in caps.items() if n != "mtl")
    assert {n for n, c in caps.items() if c["routes_generation"]} == {
        "sapt", "epi", "prog_prompt", "es_moe", "es_moe_no_cged", "es_moe_no_samoe",
        "es_moe_no_emo_loss", "es_moe_routed", "expert_gate"}


def test_config_validation_and_coercion():
    registry.discover()
    cfg = registry.make_config("seq_lora", {"lr": "1e-3", "train_motion_tokens": "false",
                                            "target_modules": "q_proj,v_proj", "epochs": "2"})
    assert cfg.lr == 1e-3 and cfg.train_motion_tokens is False and cfg.epochs == 2
    assert cfg.target_modules == ("q_proj", "v_proj")
    with pytest.raises(DataError, match="valid: lr"):
        registry.make_config("seq_lora", {"lerning_rate": 1})
    with pytest.raises(ValueError, match="lora_r"):
        StrategyConfig(lora_r=0)
    assert StrategyConfig.from_dict(StrategyConfig().to_dict()) == StrategyConfig()


def test_register_checks_types_and_duplicates():
    with pytest.raises(TypeError):
        registry.register_strategy("bad")(object)

    class Other(MotionLMStrategy):
        pass

    registry.discover()
    with pytest.raises(ValueError, match="already registered"):
        registry.register_strategy("seq_lora")(Other)


def test_plugin_example_registers_and_is_short():
    example = REPO / "examples" / "my_method.py"
    assert len(example.read_text().splitlines()) <= 40
    registry.discover(strategy_files=[example])
    assert "l2_lora" in registry.available()
    with pytest.raises(DataError, match="strategy file"):
        registry.load_strategy_file(REPO / "examples" / "missing.py")


# ---------------------------------------------------------------------------- training
def test_seq_lora_forgets_the_first_scenario(mlm):
    """Two scenarios with disjoint code ranges: after the second, SeqLoRA's single adapter has
    moved to the new codes, so the first scenario's LM loss rises far above its trained value."""
    s = _strategy("seq_lora", mlm)
    scenario = fake_scenario(n_tasks=2)
    a, b = fake_items(0, 8, K, seed=7), fake_items(1, 8, K, seed=7)
    before = _loss(s, a)
    s.train(scenario.train_stream[0])
    after_a = _loss(s, a)
    s.train(scenario.train_stream[1])
    after_b, b_loss = _loss(s, a), _loss(s, b)
    assert after_a < before - 1.0            # learnt scenario 1
    assert b_loss < before - 1.0             # learnt scenario 2
    assert after_b > after_a + 2.0           # ... and forgot scenario 1
    assert list(mlm.adapters) == ["seq"] and s.exp_counter == 2
    assert [h["experience"] for h in s.history][::10] == [1, 2]


def test_only_adapter_and_motion_rows_train(mlm):
    s = _strategy("seq_lora", mlm, epochs=2)
    base = {n: p.detach().clone() for n, p in mlm.model.named_parameters()}
    s.train(fake_scenario(n_tasks=1).train_stream[0])
    changed = {n for n, p in mlm.model.named_parameters()
               if n.replace("base_model.model.", "").replace(".base_layer", "") in base
               and not torch.equal(p, base[n.replace("base_model.model.", "").replace(".base_layer", "")])}
    assert not changed                                   # base weights untouched
    emb = mlm.model.get_input_embeddings()
    rows = emb.token_adapter.trainable_tokens_delta["seq"]
    assert rows.shape[0] == K + 2 and rows.requires_grad
    counts = lora.count_parameters(mlm.model)
    assert 0 < counts["trainable"] < counts["total"]
    assert lora.adapter_bytes(mlm, "seq") == 4 * counts["trainable"]


class _Probe(MotionLMStrategy):
    """Records the hook order and adds two constant loss terms."""

    def before_experience(self, experience):
        self.calls = getattr(self, "calls", []) + ["before"]
        if "p" not in self.motion_lm.adapters:
            self.add_lora("p")

    def after_experience(self, experience):
        self.calls.append("after")

    def loss_terms(self, batch, outputs):
        assert {"emotion", "scenario", "subset", "texts"} <= set(batch)
        return {"a": torch.tensor(0.25), "b": torch.tensor(0.5), "off": None}


def test_hooks_loss_terms_and_avalanche_plugins(mlm):
    from avalanche.core import SupervisedPlugin

    class Plug(SupervisedPlugin):
        def before_training_exp(self, strategy, **kw):
            strategy.calls.append("plugin")

    s = _Probe(motion_lm=mlm, config=StrategyConfig(epochs=1, max_steps=1), plugins=[Plug()])
    s.train(fake_scenario(n_tasks=1).train_stream[0])
    assert s.calls == ["before", "plugin", "after"]
    h = s.history[0]
    assert h["steps"] == 1 and h["a"] == pytest.approx(0.25) and h["b"] == pytest.approx(0.5)
    assert h["extra_loss"] == pytest.approx(0.75) and "off" not in h     # the sum of the terms


def test_one_loss_route_the_removed_hook_and_log_names_are_refused(mlm):
    with pytest.raises(TypeError, match="loss_terms"):
        class OldStyle(MotionLMStrategy):           # noqa: F841 - defining it is the error
            def extra_loss(self, batch, outputs):
                return torch.tensor(0.125)

    class Clash(_Probe):
        def loss_terms(self, batch, outputs):
            return {"extra_loss": torch.tensor(1.0)}

    s = Clash(motion_lm=mlm, config=StrategyConfig(epochs=1, max_steps=1))
    with pytest.raises(ValueError, match="'extra_loss'.*another name"):
        s.train(fake_scenario(n_tasks=1).train_stream[0])


def test_plugin_terms_follow_the_method_terms_on_the_same_route(mlm):
    from benchmark.strategy.plugins import CLPlugin

    class Term(CLPlugin):
        name = "term_probe"

        def loss_terms(self, strategy, batch, outputs):
            return {"c": torch.tensor(0.125)}

    s = _Probe(motion_lm=mlm, config=StrategyConfig(epochs=1, max_steps=1), plugins=[Term()])
    s.train(fake_scenario(n_tasks=1).train_stream[0])
    batch = dict.fromkeys(("emotion", "scenario", "subset", "texts"))
    assert list(s.all_loss_terms(batch, None)) == ["a", "b", "c"]    # the method's, then plugins'
    h = s.history[0]
    assert h["c"] == pytest.approx(0.125)
    assert h["extra_loss"] == pytest.approx(0.875)              # method terms + the plugin's


def test_nothing_trainable_and_raw_features_are_errors(mlm):
    s = MotionLMStrategy(motion_lm=mlm, config=StrategyConfig())
    for p in mlm.model.parameters():
        p.requires_grad_(False)
    with pytest.raises(RuntimeError, match="nothing to train"):
        s.make_optimizer()
    with pytest.raises(ValueError, match="payload"):
        s.collate([{"id": "x", "text": "t", "features": np.zeros((8, 263), np.float32)}])


def test_checkpoint_restore_continues_identically(tiny_backbone_dir):
    scenario = fake_scenario(n_tasks=2)

    def fresh():
        torch.manual_seed(0)
        return _strategy("seq_lora", MotionLM.from_pretrained(tiny_backbone_dir, n_codes=K), epochs=2,
                         reset_optimizer=False)     # the carried AdamW state must survive too

    s1 = fresh()
    s1.train(scenario.train_stream[0])
    state = s1.state_dict()
    rng = torch.get_rng_state()
    s1.train(scenario.train_stream[1])

    s2 = fresh()
    s2.load_state_dict(state)
    torch.set_rng_state(rng)
    assert s2.exp_counter == 1 and list(s2.motion_lm.adapters) == ["seq"]
    s2.train(scenario.train_stream[1])
    p1 = dict(s1.model.named_parameters())
    for n, p in s2.model.named_parameters():
        assert torch.equal(p, p1[n]), n


def test_protocol_rules_are_one_policy_for_every_method():
    """One optimiser-reset policy (reset) and one token-row rule for every registered method,
    both recorded in the method config (hence in the run's provenance)."""
    found = registry.discover()
    for name in found:
        d = registry.make_config(name, {}).to_dict()
        assert d["reset_optimizer"] is True, name
        assert d["token_rows"] == "train", name
        # the default preset's schedule (cosine decay per experience) reaches every method
        cfg = RunConfig.from_options(method=name, out="x", preset=DEFAULT_PRESET)
        assert method_config_for(cfg).lr_schedule == "cosine", name
    with pytest.raises(DataError, match="token_rows"):
        registry.make_config("seq_lora", {"token_rows": "sometimes"})


def test_reset_optimizer_and_token_rows_rules(mlm):
    scenario = fake_scenario(n_tasks=2)
    s = _strategy("seq_lora", mlm, epochs=1, max_steps=2, token_rows="freeze_after_first")
    s.train(scenario.train_stream[0])
    rows = {n: p.detach().clone() for n, p in s.model.named_parameters()
            if "trainable_tokens_delta" in n}
    assert rows and all(s.optimizer.state[p] for p in s.optimizer.param_groups[0]["params"])
    s.train(scenario.train_stream[1])
    now = dict(s.model.named_parameters())
    for n, r in rows.items():                 # frozen after the first scenario
        assert not now[n].requires_grad and torch.equal(now[n], r), n
    # reset: the second experience's AdamW started from zero state (step count = its own steps)
    steps = {float(st["step"]) for st in s.optimizer.state.values()}
    assert steps == {2.0}


@pytest.mark.parametrize("schedule,factors", [
    ("constant", [1.0, 1.0, 1.0, 1.0]),
    ("linear", [1.0, 0.75, 0.5, 0.25]),
    ("cosine", [1.0, 0.5 + 0.5 * np.cos(np.pi / 4), 0.5, 0.5 - 0.5 * np.cos(np.pi / 4)])])
def test_lr_schedule_decays_within_each_experience_and_restarts(mlm, schedule, factors):
    """Known answer: the rate each optimiser step uses, over 4 planned steps (max_steps caps the
    50 epochs of the fake experience), in both experiences (the schedule restarts)."""
    scenario = fake_scenario(n_tasks=2)
    s = _strategy("seq_lora", mlm, epochs=50, max_steps=4, lr=1e-2, lr_schedule=schedule)
    used, planned = [], set()
    step = s.optimizer_step

    def spy():
        used.append(s.optimizer.param_groups[0]["lr"])
        planned.add(s.planned_steps())
        step()
    s.optimizer_step = spy
    for exp in scenario.train_stream:
        s.train(exp)
    assert planned == {4}
    np.testing.assert_allclose(used, [1e-2 * f for f in factors] * 2, rtol=1e-9)
    with pytest.raises(DataError, match="lr_schedule must be one of"):
        registry.make_config("seq_lora", {"lr_schedule": "step"})


# ---------------------------------------------------------------------------- peft helpers
def test_merge_keeps_outputs_and_state_round_trips(mlm, tiny_backbone_dir):
    cfg = lora.lora_config(StrategyConfig(lora_dropout=0.0), mlm)
    cfg.init_lora_weights = False
    lora.add_adapter(mlm, "one", cfg)
    lora.add_adapter(mlm, "two", cfg, copy_tokens_from="one")
    ids = torch.randint(0, mlm.vocab_size, (2, 7))
    lora.set_active(mlm, "one")
    with torch.no_grad():
        ref = mlm.model(input_ids=ids).logits
    state = lora.adapter_state(mlm)

    other = MotionLM.from_pretrained(tiny_backbone_dir, n_codes=K)
    lora.load_adapter_state(other, state)
    with torch.no_grad():
        torch.testing.assert_close(other.model(input_ids=ids).logits, ref)

    lora.merge_adapter(mlm, "one")          # folded into the base weights, "two" still there
    assert list(mlm.adapters) == ["two"]
    lora.set_active(mlm, "two")
    with torch.no_grad():                   # base now holds "one"; "two" is off -> the same logits
        mlm.model.base_model.disable_adapter_layers()
        torch.testing.assert_close(mlm.model(input_ids=ids).logits, ref)
        mlm.model.base_model.enable_adapter_layers()
    lora.merge_adapter(mlm, "two")
    assert not lora.is_peft(mlm.model) and not mlm.adapters
    with pytest.raises(ValueError, match="adapter name"):
        lora.add_adapter(mlm, "bad name", cfg)


# ---------------------------------------------------------------------------- CL plugin registry
PLUGIN_FILE = '''
from dataclasses import dataclass, field

import torch

from benchmark.strategy import CLPlugin, register_plugin


@dataclass
class PullOptions:
    weight: float = field(default=1.0, metadata={"help": "weight of the pull"})

    def __post_init__(self):
        if self.weight < 0:
            raise ValueError("pull_probe: weight must be >= 0")


@register_plugin("pull_probe", options=PullOptions)
class PullProbe(CLPlugin):
    """Counts its steps; a loss term weight * 0.5."""

    def __init__(self, options=None, *, seed=0, **values):
        super().__init__(options, seed=seed, **values)
        self.steps = 0

    def loss_terms(self, strategy, batch, outputs):
        self.steps += 1
        return {"pull": torch.tensor(self.options.weight * 0.5)}

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]
'''


def test_a_plugin_registered_in_a_strategy_file_is_usable_with_with(mlm, tmp_path):
    from benchmark.strategy.plugins import PLUGINS

    path = tmp_path / "pull_plugin.py"
    path.write_text(PLUGIN_FILE)
    registry.discover(strategy_files=[path])
    assert {"ewc", "replay", "lwf", "pull_probe"} <= set(PLUGINS)
    assert PLUGINS["pull_probe"].options.__name__ == "PullOptions"
    # --with pull_probe --set pull_probe.weight=0.5: typed and checked by its options dataclass
    cfg = registry.make_config("seq_lora", {"with": "pull_probe", "pull_probe.weight": "0.5",
                                            "epochs": 1, "max_steps": 2})
    assert cfg.to_dict()["plugin_options"] == {"pull_probe": {"weight": 0.5}}
    for bad, msg in ((("pull_probe.strength", "1"), "no option 'strength'.*valid: weight"),
                     (("pull_probe.weight", "-1"), "weight must be >= 0"),
                     (("nope.weight", "1"), "unknown plugin 'nope'")):
        with pytest.raises(DataError, match=msg):
            registry.make_config("seq_lora", {"with": bad[0].split(".")[0], bad[0]: bad[1]})
    s = registry.get_strategy("seq_lora").cls(motion_lm=mlm, config=cfg, seed=0)
    s.train(fake_scenario(n_tasks=1).train_stream[0])
    assert s.history[0]["pull"] == pytest.approx(0.25) and s.cl_plugins[0].steps == 2
    assert s.state_dict()["plugins"] == {"pull_probe": {"steps": 2}}


def test_plugin_registry_checks_and_options_are_declared_once():
    from benchmark.strategy.plugins import (CLPlugin, ReplayOptions, ReplayPlugin, make_plugins,
                                            register_plugin)

    with pytest.raises(TypeError, match="subclass CLPlugin"):
        register_plugin("x_probe")(object)
    with pytest.raises(ValueError, match="already registered"):
        register_plugin("replay")(type("Other", (CLPlugin,), {}))
    with pytest.raises(ValueError, match="identifier"):
        register_plugin("a+b")
    # keywords or an options object, both validated by ReplayOptions only
    assert ReplayPlugin(mem_size=5).buffer.capacity == ReplayPlugin(ReplayOptions(5)).buffer.capacity == 5
    with pytest.raises(ValueError, match="mem_size"):
        ReplayPlugin(mem_size=-1)
    with pytest.raises(TypeError):
        ReplayPlugin(ReplayOptions(5), mem_size=5)
    (made,) = make_plugins(["replay"], {"replay": {"replay_batch_size": "3"}}, seed=4)
    assert made.replay_batch_size == 3 and made.options == ReplayOptions(200, 3) and made.seed == 4


def test_strategy_file_option_and_its_old_name(capsys):
    """`--strategy-file FILE.py` and the old `--plugin FILE.py` fill the same list, silently."""
    import argparse

    from harness.runner import add_shared_options, shared_options

    p = argparse.ArgumentParser()
    add_shared_options(p, cache_default="/tmp/c")
    args = p.parse_args(["--strategy-file", "a.py", "--plugin", "b.py", "--with", "ewc"])
    assert args.strategy_files == ["a.py", "b.py"]
    opts = shared_options(args)
    assert opts["plugins"] == ("a.py", "b.py") and opts["method_overrides"]["with_plugins"] == "ewc"
    assert capsys.readouterr() == ("", "")


# ---------------------------------------------------------------------------- one state channel
class _Stateful(MotionLMStrategy):
    """Declares every kind of state: kept values, a growing ParameterList, an expert bank."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.keep("seen", [])
        self.keep("mean", torch.zeros(3))
        self.keep("gen", torch.Generator().manual_seed(5))
        self.method_modules["protos"] = torch.nn.ParameterList()

    def before_experience(self, experience):
        self.add_expert(self.adapter_name())
        self.bank.set_weights(torch.ones(self.bank.n_experts))      # fixed weights: checkpointed
        self.method_modules["protos"].append(torch.nn.Parameter(torch.randn(4)))

    def after_experience(self, experience):
        self.seen.append(len(experience.dataset))
        self.mean = self.mean + 1
        torch.rand(2, generator=self.gen)


def test_state_round_trips_through_a_checkpoint_file(mlm, tiny_backbone_dir, tmp_path):
    from benchmark.io import atomic_torch_save

    cfg = StrategyConfig(epochs=1, max_steps=1, lora_dropout=0.0, with_plugins=("replay",))
    s = _Stateful(motion_lm=mlm, config=cfg, seed=0)
    for exp in fake_scenario(n_tasks=2).train_stream:
        s.train(exp)
    state = s.state_dict()
    assert list(state) == list(s.state_parts()) == [
        "adapters", "method_modules", "bank", "kept", "plugins", "optimizer", "exp_counter", "history"]
    atomic_torch_save(tmp_path / "state.pt", {"strategy": state})     # as the runner writes it
    saved = torch.load(tmp_path / "state.pt", map_location="cpu", weights_only=False)["strategy"]
    t = _Stateful(motion_lm=MotionLM.from_pretrained(tiny_backbone_dir, n_codes=K), config=cfg, seed=1)
    t.load_state_dict(saved)
    assert t.seen == s.seen and torch.equal(t.mean, s.mean) and t.exp_counter == 2
    assert torch.equal(t.gen.get_state(), s.gen.get_state()) and t.history == s.history
    assert len(t.method_modules["protos"]) == 2 and t.bank.experts == s.bank.experts == ["exp0", "exp1"]
    assert torch.equal(t.bank.fixed_weights, torch.ones(2))
    assert all(torch.equal(a, b) for a, b in zip(t.method_modules["protos"], s.method_modules["protos"]))
    bt, bs = t.cl_plugins[0].buffer, s.cl_plugins[0].buffer
    assert bt.n_seen == bs.n_seen > 0 and [it["id"] for it in bt.items] == [it["id"] for it in bs.items]
    p1 = dict(s.model.named_parameters())
    assert all(torch.equal(p, p1[n]) for n, p in t.model.named_parameters())
    with pytest.raises(KeyError, match="lacks part"):
        t.load_state_dict({k: v for k, v in saved.items() if k != "bank"})
    with pytest.raises(ValueError, match="checkpoints 'history' itself"):
        t.keep("history", [])


def test_base_hooks_memory_per_scenario_and_steps(mlm):
    s = _Stateful(motion_lm=mlm, config=StrategyConfig(epochs=1, max_steps=2, lora_dropout=0.0))
    assert s.memory_per_scenario() == {"lora_bytes": 0, "token_rows_bytes": 0}
    exps = fake_scenario(n_tasks=2).train_stream
    s.train(exps[0])
    assert s.steps_in_experience == 2
    s.train(exps[1])
    assert s.memory_per_scenario() == lora.adapter_bytes_split(mlm, "exp1")
    assert s.memory_per_scenario()["lora_bytes"] > 0
    with pytest.raises(AttributeError):
        s.steps_in_experience = 0                                     # read-only
