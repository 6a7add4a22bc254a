"""What the user sees while work takes time: one line when a stage starts and ends, a bar with
steps and an ETA inside it, and the truth after Ctrl-C (what was saved, what is lost).

Progress is on by default, off with ``--no-progress`` (:func:`set_enabled`), with
``L2EMG_PROGRESS=0`` and under CI (``CI`` set), where bars would only fill the log.  Bars are
tqdm's; they write to stderr, so tables on stdout stay clean.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Iterator

_STATE: dict = {"enabled": None, "doing": []}


def enabled() -> bool:
    """Whether progress is shown: :func:`set_enabled`, else ``L2EMG_PROGRESS``, else not in CI."""
    if _STATE["enabled"] is not None:
        return bool(_STATE["enabled"])
    env = os.environ.get("L2EMG_PROGRESS")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    return not os.environ.get("CI")


def forced() -> bool | None:
    """What :func:`set_enabled` last set (None: the environment decides)."""
    return _STATE["enabled"]


def set_enabled(flag: bool | None) -> None:
    """Force progress on or off for this process (None: back to the environment's default)."""
    _STATE["enabled"] = flag


def bar(total: int | None, desc: str, unit: str = "step", **kwargs):
    """A tqdm bar (steps, rate, ETA) that is silent when progress is off."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled(), dynamic_ncols=True,
                mininterval=1.0, leave=False, file=sys.stderr, **kwargs)


def say(text: str) -> None:
    """One line on stderr when progress is on."""
    if enabled():
        print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def doing(what: str, lost: str, announce: bool = True) -> Iterator[None]:
    """Work in progress: ``what`` (e.g. ``"building the tokenizer stage"``) and ``lost``, what an
    interrupt now loses (read by :func:`interrupt_message`).  With ``announce`` a start and an end
    line are printed (with the time taken)."""
    t0 = time.time()
    _STATE["doing"].append((what, lost, t0))
    if announce:
        say(f"l2emg: {what} ...")
    try:
        yield
    except KeyboardInterrupt:
        _STATE.setdefault("interrupted", _STATE["doing"][-1])   # the innermost work is what was lost
        raise
    finally:
        _STATE["doing"].pop()
    if announce:
        say(f"l2emg: {what}: done in {_span(time.time() - t0)}")


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def interrupt_message() -> str:
    """What Ctrl-C now saved and lost, for the command line's last words."""
    current = _STATE.pop("interrupted", None) or (_STATE["doing"][-1] if _STATE["doing"] else None)
    if current is None:
        return ("l2emg: interrupted; finished stages, runs and experiences are saved; rerun the "
                "same command to resume")
    what, lost, t0 = current
    return (f"l2emg: interrupted while {what} ({_span(time.time() - t0)} in): {lost}; finished "
            "stages, runs and experiences are saved; rerun the same command to resume")
