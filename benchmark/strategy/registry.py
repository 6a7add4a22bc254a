"""Strategy registry: method name -> (class, config dataclass).

``@register_strategy("seq_lora", config=SeqLoRAConfig)`` on a :class:`MotionLMStrategy`
subclass registers it.  :func:`discover` finds strategies in three places:

* the project's own folders ``baselines/`` and ``methods/``, found **by path** next to the
  installed ``benchmark`` package (:data:`PROJECT_ROOT`), never by searching ``sys.path`` for a
  package of that name (another ``baselines`` package earlier on the path cannot be picked; one
  already imported from elsewhere is an error);
* third-party packages through the Python entry-point group ``l2emg.strategies`` (in the
  package's ``pyproject.toml``: ``[project.entry-points."l2emg.strategies"] mine = "my_pkg.method"``;
  the module is imported, its ``@register_strategy`` classes register);
* ``--strategy-file FILE.py`` (old name ``--plugin``): a file of strategies.

Any of these modules may also register composable CL plugins (``@register_plugin`` of
:mod:`benchmark.strategy.plugins`, also ``benchmark.strategy.register_plugin``): discovery imports it, its plugins register
and ``--with NAME`` takes them, as the built-in ``ewc``, ``replay`` and ``lwf``.

``benchmark`` itself never imports a strategy module by name.  A module that fails to import is
remembered (shown by ``l2emg methods`` and in the unknown-method error) instead of hiding the
others.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from benchmark.io import DataError
from benchmark.strategy.config import StrategyConfig

STRATEGY_PACKAGES = ("baselines", "methods")
ENTRY_POINT_GROUP = "l2emg.strategies"
PROJECT_ROOT = Path(__file__).resolve().parents[2]      # the folder holding benchmark/, baselines/


@dataclass(frozen=True)
class StrategyEntry:
    name: str
    cls: type
    config: type
    module: str

    @property
    def doc(self) -> str:
        return (self.cls.__doc__ or "").strip().splitlines()[0] if self.cls.__doc__ else ""


# what a method may be on the leaderboard (MotionLMStrategy.role)
ROLES = ("method", "upper_bound", "lower_bound")
_REGISTRY: dict[str, StrategyEntry] = {}
IMPORT_ERRORS: dict[str, str] = {}


def register_strategy(name: str, config: type = StrategyConfig):
    """Class decorator: register a :class:`MotionLMStrategy` subclass under ``name``."""
    from benchmark.strategy.base import MotionLMStrategy

    if not isinstance(config, type) or not issubclass(config, StrategyConfig):
        raise TypeError(f"config of strategy {name!r} must subclass StrategyConfig")

    def wrap(cls):
        if not issubclass(cls, MotionLMStrategy):
            raise TypeError(f"strategy {name!r} must subclass MotionLMStrategy")
        old = _REGISTRY.get(name)
        if old is not None and (old.cls.__module__, old.cls.__qualname__) != \
                (cls.__module__, cls.__qualname__):
            raise ValueError(f"strategy name {name!r} is already registered by {old.module}")
        cls.name = name
        cls.config_class = config
        _check_facts(name, cls)
        _REGISTRY[name] = StrategyEntry(name, cls, config, cls.__module__)
        return cls

    return wrap


def _check_facts(name: str, cls: type) -> None:
    """The method facts a class states must be of the right kind (see MotionLMStrategy)."""
    own = vars(cls)
    where = f"strategy {name!r} ({cls.__module__}.{cls.__qualname__})"
    for fact in ("display_name", "latex_name"):
        if not isinstance(own.get(fact, ""), str):
            raise TypeError(f"{where}: {fact} must be a string")
    row = own.get("paper_row")
    if row is not None and (not isinstance(row, int) or isinstance(row, bool) or row < 1):
        raise TypeError(f"{where}: paper_row must be a row number >= 1 or None, not {row!r}")
    if own.get("role", "method") not in ROLES:
        raise ValueError(f"{where}: role {own['role']!r} is not one of {', '.join(ROLES)}")


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - one broken method must not hide the others; kept + shown
        IMPORT_ERRORS[module] = traceback.format_exc(limit=3).strip().splitlines()[-1]


def load_strategy_file(path: str | Path) -> str:
    """Import a strategy file (``--strategy-file FILE.py``); returns its module name."""
    path = Path(path).resolve()
    if not path.is_file() or path.suffix != ".py":
        raise DataError(path, "the strategy file is not an existing .py file",
                        "pass --strategy-file path/to/my_method.py")
    module = f"l2emg_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if module in sys.modules:
        return module
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as err:  # noqa: BLE001 - re-raised as a DataError naming the file
        sys.modules.pop(module, None)
        raise DataError(path, f"the strategy file failed to import ({type(err).__name__}: {err})",
                        "fix the strategy file") from err
    return module


def project_package(name: str, root: Path = PROJECT_ROOT):
    """The project's own package ``name`` (``root / name``), imported from that folder by path;
    None when the folder does not exist.  A module of that name already imported from another
    place is refused (it would shadow the project's strategies)."""
    folder = (Path(root) / name).resolve()
    init = folder / "__init__.py"
    if not init.is_file():
        return None
    mod = sys.modules.get(name)
    if mod is not None:
        where = Path(getattr(mod, "__file__", None) or "?").resolve().parent
        if where != folder:
            raise DataError(where, f"a different {name!r} package is already imported (the "
                            f"project's is {folder})", f"rename the other package or remove it "
                            "from sys.path / PYTHONPATH")
        return mod
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception:
        sys.modules.pop(name, None)
        raise
    return mod


def _entry_points():
    from importlib import metadata

    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def discover(strategy_files: Iterable[str | Path] = (),
             packages: Iterable[str] = STRATEGY_PACKAGES) -> dict:
    """Import the project's strategy folders (by path), the ``l2emg.strategies`` entry points and
    the strategy files; returns the strategy registry (the CL plugins they register are in
    :data:`benchmark.strategy.plugins.PLUGINS`)."""
    for pkg_name in packages:
        try:
            pkg = project_package(pkg_name)
        except DataError:
            raise
        except Exception:  # noqa: BLE001 - kept + shown, as for a broken module
            IMPORT_ERRORS[pkg_name] = traceback.format_exc(limit=3).strip().splitlines()[-1]
            continue
        if pkg is None:
            continue
        for info in pkgutil.iter_modules(pkg.__path__, prefix=f"{pkg_name}."):
            if not info.name.rsplit(".", 1)[-1].startswith("_"):
                _import(info.name)
    for ep in _entry_points():
        try:
            ep.load()
        except Exception:  # noqa: BLE001 - one broken package must not hide the others
            IMPORT_ERRORS[f"entry point {ep.name} ({ep.value})"] = \
                traceback.format_exc(limit=3).strip().splitlines()[-1]
    for path in strategy_files:
        load_strategy_file(path)
    return dict(_REGISTRY)


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_strategy(name: str) -> StrategyEntry:
    """The entry of method ``name``; unknown -> DataError listing the valid ones."""
    if name not in _REGISTRY:
        broken = "".join(f"; {m} failed to import: {e}" for m, e in sorted(IMPORT_ERRORS.items()))
        raise DataError(None, f"unknown method {name!r}{broken}",
                        f"choose one of: {', '.join(available()) or '(none registered)'}")
    return _REGISTRY[name]


def make_config(name: str, values: dict | None = None) -> StrategyConfig:
    """The typed config of method ``name`` from a dict of overrides (strings coerced)."""
    entry = get_strategy(name)
    try:
        return entry.config.from_dict(values)
    except (TypeError, ValueError) as err:
        raise DataError(None, f"bad config for method {name!r}: {err}",
                        "check the --set key=value pairs") from err


# ----------------------------------------------------------------------------- method facts
def method_info(name: str) -> dict:
    """The method facts of registered method ``name`` (what ``result.json`` records as
    ``method_info``): ``display_name``, ``latex_name``, ``role``, ``paper_row``; each taken from
    the class's own body (a fact a class does not state is the default, not its parent's)."""
    own = vars(get_strategy(name).cls)
    return {"display_name": own.get("display_name") or name,
            "latex_name": own.get("latex_name", ""),
            "role": own.get("role", "method"), "paper_row": own.get("paper_row")}


def display_name(name: str) -> str:
    """Table name of registered method ``name``."""
    return method_info(name)["display_name"]


def paper_methods() -> list[str]:
    """The registered methods of the paper's Table 2, in its row order (two methods that claim
    the same row are an error naming both)."""
    rows: dict[int, str] = {}
    for name in available():
        row = method_info(name)["paper_row"]
        if row is None:
            continue
        if row in rows:
            raise DataError(None, f"methods {rows[row]!r} and {name!r} both claim paper_row {row}",
                            "give each method of the paper's Table 2 its own paper_row")
        rows[row] = name
    return [rows[r] for r in sorted(rows)]


def with_role(role: str) -> list[str]:
    """The registered methods of ``role`` (one of :data:`ROLES`), sorted by name."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    return [n for n in available() if method_info(n)["role"] == role]


def role_method(role: str) -> str:
    """The one registered method of ``role`` (e.g. the lower bound); none or several -> DataError."""
    found = with_role(role)
    if len(found) != 1:
        raise DataError(None, f"{len(found)} registered methods have role {role!r} "
                        f"({', '.join(found) or 'none'}), expected one",
                        "set role on exactly one strategy class (or name the method explicitly)")
    return found[0]
