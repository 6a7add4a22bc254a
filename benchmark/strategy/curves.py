"""Training curves through Avalanche's evaluation plugin and loggers.

Every strategy's ``evaluator`` is an Avalanche ``EvaluationPlugin`` holding one metric,
:class:`EpochLossTerms`: after each training epoch it emits the epoch's mean LM loss, the sum of
the loss terms and every term of the method and its plugins (the row the strategy base appends
to ``history``, i.e. to ``train_log.csv``) as Avalanche ``MetricValue``s named ``train/<column>``,
at x = optimiser steps so far in the run.  The plugin keeps them
(``strategy.evaluator.get_all_metrics()``) and hands them to its loggers, which are Avalanche's
own: ``TensorboardLogger`` (``l2emg run --log tensorboard`` -> ``RUN/tensorboard/``) and
``WandBLogger`` (``--log wandb``: offline mode, never the network -> ``RUN/wandb/``; ``wandb
sync`` uploads it later if you want).  Avalanche 0.6's ``WandBLogger`` needs a wandb release
with ``wandb.viz``; with a newer wandb (0.31 here) ``--log wandb`` is refused with that reason
(upload the TensorBoard folder with ``wandb sync --sync-tensorboard`` instead).

``train_log.csv`` is written from ``history`` as before (same columns): Avalanche's
``CSVLogger`` writes fixed accuracy/loss columns (``training_results.csv``), not per-term
losses, and ``history`` is what a checkpoint carries across ``--resume``.
"""
from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path
from typing import Sequence

from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

LOGGERS: tuple[str, ...] = ("tensorboard", "wandb")
_ROW_KEYS = ("experience", "epoch", "steps")


class EpochLossTerms(PluginMetric[dict]):
    """After each training epoch: ``train/<name>`` for ``lm_loss``, ``extra_loss`` and every loss
    term of ``strategy.history[-1]`` (x = optimiser steps of the run so far, so a resumed run's
    curve continues where it stopped), plus ``train/experience``."""

    def __init__(self):
        super().__init__()
        self._last: dict[str, float] = {}

    def reset(self) -> None:
        self._last = {}

    def result(self) -> dict[str, float]:
        return dict(self._last)

    def after_training_epoch(self, strategy) -> list[MetricValue]:
        history = getattr(strategy, "history", None)
        if not history:
            return []
        row = history[-1]
        step = int(sum(r.get("steps", 0) for r in history))
        self._last = {k: float(v) for k, v in row.items() if k not in _ROW_KEYS}
        values = [MetricValue(self, f"train/{k}", v, step) for k, v in self._last.items()]
        values.append(MetricValue(self, "train/experience", int(row["experience"]), step))
        return values

    def __str__(self) -> str:
        return "EpochLossTerms"


def evaluation_plugin(loggers: Sequence = ()):
    """The strategy's Avalanche ``EvaluationPlugin``: :class:`EpochLossTerms` + ``loggers``."""
    from avalanche.training.plugins import EvaluationPlugin

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        return EvaluationPlugin(EpochLossTerms(), loggers=list(loggers))


def parse_loggers(value) -> tuple[str, ...]:
    """``"tensorboard,wandb"`` / a sequence -> the validated tuple of logger names."""
    from benchmark.io import DataError

    items = value.split(",") if isinstance(value, str) else list(value or ())
    names = tuple(dict.fromkeys(s.strip().lower() for s in items if s.strip()))
    bad = [n for n in names if n not in LOGGERS]
    if bad:
        raise DataError(None, f"unknown logger(s) {bad} in --log",
                        f"choose from {', '.join(LOGGERS)} (train_log.csv is always written)")
    return names


def make_loggers(names: Sequence[str], out: str | os.PathLike, run_name: str,
                 config: dict | None = None) -> list:
    """Avalanche loggers for ``names`` writing under the run folder ``out``.  A logger whose
    package is not installed is a DataError naming the package."""
    from benchmark.io import DataError

    out = Path(out)
    loggers = []
    for name in parse_loggers(names):
        if name == "tensorboard":
            try:
                import tensorboard  # noqa: F401 - torch's SummaryWriter needs it
            except ImportError:
                raise DataError(None, "--log tensorboard needs the tensorboard package",
                                "pip install tensorboard (or drop --log tensorboard)") from None
            from avalanche.logging import TensorboardLogger

            loggers.append(TensorboardLogger(out / "tensorboard"))
        elif name == "wandb":
            try:
                import wandb
            except ImportError:
                raise DataError(None, "--log wandb needs the wandb package",
                                "pip install wandb (or drop --log wandb)") from None
            if not wandb_compatible():
                raise DataError(None, f"--log wandb: Avalanche's WandBLogger does not run with "
                                f"the installed wandb {getattr(wandb, '__version__', '?')} (it needs "
                                "wandb.viz, gone from recent wandb releases)",
                                "use --log tensorboard and upload its folder with `wandb sync "
                                "--sync-tensorboard RUN/tensorboard`, or install a wandb release "
                                "that has wandb.viz")
            from avalanche.logging import WandBLogger

            os.environ["WANDB_MODE"] = "offline"        # never the network
            os.environ.setdefault("WANDB_SILENT", "true")
            out.mkdir(parents=True, exist_ok=True)
            # an explicit id: avalanche 0.6 generates one with wandb.util.generate_id, which
            # recent wandb releases no longer have
            run_id = f"{(config or {}).get('config_hash', 'run')[:12]}-{secrets.token_hex(4)}"
            loggers.append(WandBLogger(
                project_name="l2emg", run_name=run_name, dir=str(out), save_code=False,
                config=config, params={"mode": "offline", "id": run_id,
                                       "settings": wandb.Settings(console="off", silent=True)}))
    return loggers


def wandb_compatible() -> bool:
    """Whether the installed wandb has what Avalanche 0.6's ``WandBLogger`` calls per value
    (``wandb.viz.CustomChart``); False when wandb is missing."""
    try:
        import wandb
    except ImportError:
        return False
    try:
        return hasattr(wandb.viz, "CustomChart")
    except AttributeError:
        return False


def close_loggers(loggers: Sequence) -> None:
    """Flush and close what :func:`make_loggers` opened (TensorBoard writer, W&B run)."""
    for logger in loggers:
        writer = getattr(logger, "writer", None)
        if writer is not None:
            writer.close()
        run = getattr(getattr(logger, "wandb", None), "run", None)
        if run is not None:
            run.finish()
