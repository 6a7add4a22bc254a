"""Run times of the rerun grid against the published grid's (results/reproduce-v1/README.md).

    python results/reproduce-v1/timing.py RERUN_RUNS PUBLISHED_RUNS [--pause START END]...

Reads each finished run's result.json (wall_time_s; provenance.created_unix is when it finished)
and the published run of the same config hash. A run in flight during a pause of the whole sweep
(SIGSTOP, START..END unix seconds; --pause may repeat) has the pause subtracted. Prints one line per run and the
totals, and the estimate for the runs not finished: their published time x the measured ratio.
"""
import argparse
import json
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("rerun")
p.add_argument("published")
p.add_argument("--pause", nargs=2, type=float, action="append", default=[])
a = p.parse_args()
pub = {}
for f in Path(a.published).rglob("result.json"):
    r = json.loads(f.read_text())
    pub[r["config_hash"]] = (f.parent.relative_to(a.published), r["wall_time_s"])
done, t_new, t_old = set(), 0.0, 0.0
for f in sorted(Path(a.rerun).rglob("result.json")):
    r = json.loads(f.read_text())
    end, wall = r["provenance"]["created_unix"], r["wall_time_s"]
    paused = sum(max(0.0, min(end, p1) - max(end - wall, p0)) for p0, p1 in a.pause)
    name, old = pub[r["config_hash"]]
    done.add(r["config_hash"])
    t_new += wall - paused
    t_old += old
    print(f"{str(name):40s} {wall - paused:6.0f} s (published {old:5.0f} s, ratio {(wall - paused) / old:.2f})"
          + (f"  [{paused:.0f} s paused, subtracted]" if paused else ""))
ratio = t_new / t_old
rest = sum(old for h, (_, old) in pub.items() if h not in done)
total = t_new + rest * ratio
print(f"{len(done)} of {len(pub)} runs finished: {t_new / 60:.1f} core-min (published {t_old / 60:.1f}; ratio {ratio:.2f})")
print(f"the other {len(pub) - len(done)} at that ratio: {rest * ratio / 60:.1f} core-min; grid {total / 3600:.2f} "
      f"core-hours, {total / 2 / 3600:.2f} h on 2 cores (runs only)")
