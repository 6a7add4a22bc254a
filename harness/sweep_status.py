"""``l2emg status RUNS_DIR``: which runs of a sweep are finished, running, failed or pending.

Read from the run folders alone (the sweep may be running elsewhere, e.g. on a cluster):

* ``finished``: ``result.json`` (written last by the run);
* ``failed``: ``failed.json`` (the sweep's marker for a run that failed for good);
* ``running``: ``running.json`` (a worker's marker), unless it names a process on this host
  that is gone;
* ``interrupted``: ``progress.json`` / ``checkpoints/`` / ``config.json`` but no live worker
  (the next sweep resumes it from its last checkpoint);
* ``pending``: planned in ``RUNS_DIR/sweep.json`` but nothing in its folder yet.

Folders holding a run but missing from the plan (e.g. made by ``l2emg run``) are listed too.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path

from benchmark.io import DataError
from harness.run_config import RunKey

STATES = ("finished", "running", "interrupted", "failed", "pending", "other-config")
_RUN_FILES = ("result.json", "progress.json", "config.json", "failed.json", "running.json")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def run_state(folder: Path) -> dict:
    """State of one run folder: ``{"state", "finished", "n_experiences", "detail"}``."""
    folder = Path(folder)
    progress = _read_json(folder / "progress.json") or {}
    info = {"finished": progress.get("finished"), "n_experiences": progress.get("n_experiences"),
            "detail": ""}
    if (folder / "result.json").is_file():
        res = _read_json(folder / "result.json") or {}
        n = res.get("n_experiences")
        return {**info, "state": "finished", "finished": n, "n_experiences": n}
    failed = _read_json(folder / "failed.json")
    if failed is not None:
        return {**info, "state": "failed", "detail": str(failed.get("error", "?"))}
    running = _read_json(folder / "running.json")
    if running is not None:
        host, pid = running.get("host"), running.get("pid")
        if host != socket.gethostname() or (isinstance(pid, int) and _alive(pid)):
            return {**info, "state": "running", "detail": f"{host}:{pid}"}
    if any((folder / f).exists() for f in ("progress.json", "checkpoints", "config.json")):
        return {**info, "state": "interrupted", "detail": "resumes from its last checkpoint"}
    return {**info, "state": "pending"}


def _identity(folder: Path) -> str | None:
    """The request hash of the run in ``folder`` (None: no run, or unreadable)."""
    record = _read_json(folder / "config.json")
    if not isinstance(record, dict) or "method" not in record:
        return None
    from harness.run_config import recorded_identity

    return record.get("request_hash") or recorded_identity(record)


def _is_run_file(path: Path) -> bool:
    """A run's own file (not e.g. a tokenizer's or a backbone's ``config.json`` in a cache)."""
    if path.name != "config.json":
        return True
    cfg = _read_json(path)
    return isinstance(cfg, dict) and "method" in cfg and "config_hash" in cfg


def sweep_status(runs_dir: str | Path) -> list[dict]:
    """One row per run: label, folder, state, finished / n_experiences, detail.  Planned runs
    come from ``sweep.json`` (in plan order); run folders outside the plan follow."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise DataError(root, "no such folder", "pass the --out folder of a sweep (or a bench's runs/)")
    if not (root / "sweep.json").is_file() and (root / "runs" / "sweep.json").is_file():
        root = root / "runs"                      # `l2emg bench --out X` keeps its runs in X/runs
    rows, seen = [], set()
    plan_path = root / "sweep.json"
    if plan_path.is_file():
        plan = _read_json(plan_path)
        if not isinstance(plan, dict) or not isinstance(plan.get("runs"), list):
            raise DataError(plan_path, "not a sweep plan (no 'runs' list)",
                            "delete it; the next `l2emg sweep` writes it again")
        for r in plan["runs"]:
            folder = (root / r["folder"]).resolve()
            seen.add(folder)
            row = {"label": r["label"], "folder": str(folder), **run_state(folder)}
            have = _identity(folder)
            if r.get("request_hash") and have and have != r["request_hash"]:
                row.update(state="other-config", detail=f"holds config {have}, the plan asks for "
                           f"{r['request_hash']}: the sweep refuses it (--overwrite reruns it)")
            rows.append(row)
    extra = sorted({p.parent.resolve() for name in _RUN_FILES for p in root.rglob(name)
                    if ".stages" not in p.parts and ".submitit" not in p.parts
                    and _is_run_file(p)} - seen)
    for folder in extra:
        cfg = _read_json(folder / "config.json") or {}
        order = cfg.get("order", {})
        label = (RunKey(cfg["method"], cfg.get("setting"), order.get("name", "?"), cfg.get("seed")).label
                 if "method" in cfg else str(folder.relative_to(root.resolve())))
        rows.append({"label": label, "folder": str(folder), **run_state(folder)})
    if not rows:
        raise DataError(root, "no sweep plan (sweep.json) and no run folders here",
                        "pass the --out folder of `l2emg sweep` or `l2emg run`")
    return rows


def format_status(rows: list[dict], show_finished: bool = False) -> str:
    counts = {s: sum(r["state"] == s for r in rows) for s in STATES}
    lines = [f"{len(rows)} runs: " + ", ".join(f"{counts[s]} {s}" for s in STATES
                                              if counts[s] or s != "other-config")]
    for r in rows:
        if r["state"] == "finished" and not show_finished:
            continue
        done = (f"{r['finished']}/{r['n_experiences']} exp" if r.get("n_experiences") else "")
        lines.append(f"  {r['state']:<12}{r['label']:<48}{done:<10}{r['detail']}".rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI
def status_args(p) -> None:
    p.add_argument("runs_dir", metavar="RUNS_DIR", help="the --out folder of a sweep (or bench)")
    p.add_argument("--all", action="store_true", help="list finished runs too")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")


def status(args) -> int:
    rows = sweep_status(args.runs_dir)
    print(json.dumps(rows, indent=1) if args.json else format_status(rows, show_finished=args.all))
    return 1 if any(r["state"] == "failed" for r in rows) else 0
