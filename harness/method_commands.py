"""``l2emg methods``: list the registered strategies and their config fields."""
from __future__ import annotations


def methods_args(parser) -> None:
    parser.add_argument("--plugin", action="append", default=[], help="extra strategy file")
    parser.add_argument("--verbose", "-v", action="store_true", help="show every config field")


def methods(args) -> int:
    from benchmark.strategy import registry

    found = registry.discover(args.plugin)
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
    for module, err in sorted(registry.IMPORT_ERRORS.items()):
        print(f"warning: {module} failed to import: {err}")
    return 0
