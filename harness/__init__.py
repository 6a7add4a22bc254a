"""The orchestration layer: what runs experiments on the benchmark.

The run config and its presets (``run_config``), the shared stages and their cache
(``stages``), one run through a stream (``runner``), the grid of runs and its executors
(``sweep``, ``sweep_status``), FR's measured floor (``floor``), everything end to end
(``pipeline``: ``l2emg bench``) and the command line (``cli`` and the ``*_commands``
modules).  It imports ``benchmark``, the strategies, ``evaluators`` and ``leaderboard``;
none of them imports it (tests/test_layering.py).
"""
