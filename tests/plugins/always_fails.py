"""Test plugin: a registered strategy whose every run fails at once (for the sweep executors'
failure isolation)."""
from benchmark.strategy import MotionLMStrategy, register_strategy


@register_strategy("always_fails")
class AlwaysFails(MotionLMStrategy):
    def __init__(self, **kw):
        raise RuntimeError("always_fails: this method fails by design")
