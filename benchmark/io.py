"""Shared file plumbing: clear data errors, atomic writes, content hashes, provenance.

Every file the project writes goes through one of the ``atomic_*`` helpers (write to a
temporary sibling, fsync, ``os.replace``), so an interrupted run never leaves a
half-written result, checkpoint or table behind.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np


class DataError(ValueError):
    """Bad input: says which file, what is wrong and how to fix it, in one line."""

    def __init__(self, path: str | os.PathLike | None, problem: str, fix: str | None = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        self.fix = fix
        where = f"{self.path}: " if self.path else ""
        hint = f" Fix: {fix}" if fix else ""
        super().__init__(f"{where}{problem}.{hint}")


# ----------------------------------------------------------------------------- atomic writes
def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(str(path), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default, allow_nan=True) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, to_json(obj))


def read_json(path: str | os.PathLike, fix: str = "restore the file or rerun what wrote it") -> Any:
    """A JSON file's content; invalid JSON is a DataError naming the file and line."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}", f"is not valid JSON ({err.msg})", fix) from err


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    import io

    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_save_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict | None = None) -> Path:
    """Write a flat ``{name: tensor}`` dict as one safetensors file, atomically (no pickle, readable
    by any safetensors reader; the bytes depend only on names, dtypes, shapes and values)."""
    return atomic_write_bytes(path, safetensors_bytes(tensors, metadata))


def safetensors_bytes(tensors: dict, metadata: dict | None = None) -> bytes:
    """The bytes :func:`atomic_save_safetensors` writes (so a hash can be taken before saving)."""
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, metadata=metadata)


def load_safetensors(path: str | os.PathLike, fix: str) -> dict:
    """A safetensors file's ``{name: tensor}`` on CPU; a truncated or foreign file is a DataError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(path, f"cannot be read as safetensors ({err})", fix) from err


def load_weights(path: str | os.PathLike, fix: str) -> dict:
    """A weights file's tensors: safetensors by suffix, else a torch state dict read with
    ``weights_only=True`` (no pickle code runs); an unreadable file is a DataError naming it."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_safetensors(path, fix)
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError) as err:
        raise DataError(path, f"cannot be read ({err})", fix) from err


def _owner() -> str:
    """``host-pid``: who builds a temporary folder (so a later build can tell a dead one's)."""
    return f"{platform.node().replace('.', '_') or 'host'}-{os.getpid()}"


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings ``.<name>.<host>-<pid>.*.tmp`` that :func:`atomic_dir` left
    for ``path`` when its builder was killed (its process on this host is gone); a live
    builder's, or another host's, stay.  Returns what was removed."""
    import psutil

    path = Path(path)
    host = platform.node().replace(".", "_") or "host"
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        owner = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        who, _, pid = owner.rpartition("-")
        if who != host or not pid.isdigit() or int(pid) == os.getpid() or psutil.pid_exists(int(pid)):
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    return removed


def default_cache() -> str:
    """The stage cache shared by every ``--out`` of this user: ``$L2EMG_CACHE``, else
    ``$XDG_CACHE_HOME/l2emg``, else ``~/.cache/l2emg`` (stages are reused by content hash, so
    one cache serves every run folder)."""
    if os.environ.get("L2EMG_CACHE"):
        return os.environ["L2EMG_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "l2emg")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a whole folder in a temporary sibling and rename it into place on success.

    >>> with atomic_dir("out/corpus") as tmp:   # write everything under tmp
    ...     ...
    On an exception the temporary folder is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise DataError(path, "the output folder already exists",
                        "choose another --out or pass --overwrite")
    remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{_owner()}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ----------------------------------------------------------------------------- hashes
def hash_json(obj: Any, n: int = 16) -> str:
    """Stable short hash of a JSON-serialisable object (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def hash_files(paths: Iterable[str | os.PathLike], root: str | os.PathLike | None = None,
               n: int = 16) -> str:
    """Content hash over files (relative names + bytes), order-independent."""
    h = hashlib.sha256()
    items = sorted(Path(p) for p in paths)
    for p in items:
        name = str(p.relative_to(root)) if root else p.name
        h.update(name.encode())
        h.update(b"\0")
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:n]


def hash_blobs(blobs: dict[str, bytes], n: int = 16) -> str:
    """:func:`hash_files` of files not written yet: ``{relative name: bytes}`` hashes as those
    files would, once written under those names."""
    h = hashlib.sha256()
    for name in sorted(blobs, key=Path):
        h.update(name.encode())
        h.update(b"\0")
        h.update(blobs[name])
    return h.hexdigest()[:n]


# ----------------------------------------------------------------------------- provenance
PROVENANCE_PACKAGES = ("torch", "torchvision", "transformers", "peft", "avalanche-lib", "numpy",
                       "scipy", "pandas", "scikit-learn", "tokenizers", "smplx")


def code_version(root: str | os.PathLike | None = None) -> dict:
    """Git commit of the code (and whether the tree had local changes); in a snapshot made with
    ``git archive`` (no .git), the commit the archive wrote into ``benchmark/ARCHIVE_COMMIT``."""
    root = Path(root) if root else Path(__file__).resolve().parents[1]
    out = {"commit": None, "dirty": None, "package_version": None}
    from benchmark import __version__

    out["package_version"] = __version__
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode == 0:
            out["commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                   cwd=root, capture_output=True, text=True, timeout=10)
            out["dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    if out["commit"] is None:        # no git: a `git archive` snapshot has the commit written in
        archived = _archive_commit(root / "benchmark" / "ARCHIVE_COMMIT")
        if archived:
            out.update(commit=archived, source="git archive")   # dirty: unknown (None)
    return out


def _archive_commit(path: Path) -> str | None:
    """The commit `git archive` substituted into ``path`` (export-subst, .gitattributes), or
    None (no file, or the unsubstituted placeholder of a checkout)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text if len(text) == 40 and all(c in "0123456789abcdef" for c in text) else None


def package_versions(names: Iterable[str] = PROVENANCE_PACKAGES) -> dict:
    from importlib import metadata

    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(**extra: Any) -> dict:
    """What every result file records: code version, packages, machine, time."""
    info = {
        "code": code_version(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "created_unix": time.time(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    torch = sys.modules.get("torch")
    if torch is not None:        # trained weights are byte-identical only at the same thread count
        info["torch_threads"] = torch.get_num_threads()
    info.update(extra)
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and its waited-for children), in MiB."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0
