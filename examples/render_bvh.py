"""Stick-figure filmstrips of imported BVH motions: one row per content (the first file of each
content, ``normal`` style when there is one), as ``l2emg data import-bvh`` converts it.

    python examples/render_bvh.py --src ../shared/data/bandai-namco/dataset-1 --out docs/figures/bandai-dataset-1.png
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", required=True, type=Path, help="folder of dataset-N_{content}_{style}_{take}.bvh")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p.add_argument("--frames", type=int, default=8, help="snapshots per motion")
    args = p.parse_args()

    from benchmark.corpus.bvh_import import convert_bvh
    from benchmark.io import atomic_write_bytes
    from leaderboard.figures import filmstrip_figure

    picks: dict[str, Path] = {}
    for f in sorted(args.src.rglob("*.bvh")):
        m = re.match(r"^dataset-\d+_(.+?)_(.+?)_\d+$", f.stem)
        if m and (m.group(1) not in picks or (m.group(2) == "normal"
                                              and "_normal_" not in picks[m.group(1)].stem)):
            picks[m.group(1)] = f
    rows = []
    for content, f in picks.items():
        _, joints, _ = convert_bvh(f)
        rows.append((f"{content}\n({f.stem.split('_')[2]})", joints))
    fig = filmstrip_figure(rows, f"{args.src.name}: one imported motion per content "
                           f"(SMPL 22 joints, 20 fps)", n_frames=args.frames)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    atomic_write_bytes(args.out, buf.getvalue())
    print(f"wrote {args.out} ({len(rows)} contents)")


if __name__ == "__main__":
    main()
