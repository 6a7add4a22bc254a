"""L2-EMG bench: corpora, splits, streams, motion representation, tokenizer, backbone,
strategy protocol, runner and CLI.

Data flows one way: ``benchmark`` -> strategies (``baselines``, ``methods``) ->
``evaluators`` -> ``leaderboard``.  Nothing in this package imports a strategy; strategies
are found through :mod:`benchmark.strategy.registry`.
"""

__version__ = "0.1.0"
