"""``l2emg methods``: list the registered strategies and their config fields."""
from __future__ import annotations


def methods_args(parser) -> None:
    parser.add_argument("--strategy-file", "--plugin", dest="strategy_files", action="append",
                        default=[], metavar="FILE.py", help="a .py file of extra strategies (and CL plugins) to register (repeatable; --plugin is its old name)")
    parser.add_argument("--verbose", "-v", action="store_true", help="show every config field")


def methods(args) -> int:
    from benchmark.strategy import registry

    found = registry.discover(args.strategy_files)
    width = max([len(n) for n in found] + [4])
    for name in sorted(found):
        entry = found[name]
        caps = entry.cls.capabilities()
        joint = " (joint, non-continual)" if caps["joint"] else ""
        print(f"{name:<{width}}  {entry.doc}{joint}  [{entry.module}]")
        if args.verbose:
            print(f"{'':<{width}}    capabilities: {', '.join(k for k, v in caps.items() if v) or '-'}")
        if args.verbose:
            for field, help_, default in entry.config.help():
                print(f"{'':<{width}}    {field} = {default!r}  {help_}")
    from benchmark.strategy.plugins import PLUGINS

    print("CL plugins (--with NAME, options --set NAME.option=VALUE):")
    for name in sorted(PLUGINS):
        print(f"  {name:<{width - 2}}  {PLUGINS[name].doc}  [{PLUGINS[name].module}]")
    for module, err in sorted(registry.IMPORT_ERRORS.items()):
        print(f"warning: {module} failed to import: {err}")
    return 0
