"""Read the motion-pretrained backbone probe (val part): the text+motion recipe's runs against the
text recipe's runs of the same stream, stages and seeds.  Usage: python analyse.py"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).resolve().parent
ARMS = {"text": [HERE.parent / f"data-val-f1-s{s}" for s in (0, 1)],
        "text+motion": [HERE / f"tm-val-s{s}" for s in (0, 1)]}


def read(run: Path) -> dict:
    res = json.loads((run / "result.json").read_text())
    m = {k: pd.read_csv(run / "matrices" / f"{k}.csv", index_col=0).to_numpy()
         for k in ("r_precision_top1", "fid", "multimodality")}
    base = pd.read_csv(run / "matrices" / "baseline.csv", index_col=0)
    return {"diag": np.diag(m["r_precision_top1"]), "fid_diag": np.diag(m["fid"]),
            "mm_final": m["multimodality"][-1], "final": m["r_precision_top1"][-1],
            "base_r1": base.loc["r_precision_top1"].to_numpy(float),
            "base_fid": base.loc["fid"].to_numpy(float),
            "ceiling": res["ground_truth"]["r_precision_top1"], "hash": res["config_hash"],
            "stages": res["stage_hashes"]}


def main() -> None:
    runs = {arm: [read(r) for r in rs] for arm, rs in ARMS.items()}
    ceiling = runs["text"][0]["ceiling"]
    for arm, rs in runs.items():
        d = np.concatenate([r["diag"] for r in rs])
        b = np.concatenate([r["base_r1"] for r in rs])
        print(f"{arm:12s} diag cells {np.round(d, 3)} mean {d.mean():.3f} ({100 * d.mean() / ceiling:.1f}% "
              f"of the val ceiling {ceiling:.3f}); diag FID {np.mean([r['fid_diag'] for r in rs]):.2f}; "
              f"final R@1 {np.mean([r['final'] for r in rs]):.3f}; final MM {np.mean([r['mm_final'] for r in rs]):.2f}; "
              f"untrained R@1 {b.mean():.3f} (FID {np.mean([r['base_fid'] for r in rs]):.1f}); "
              f"hashes {[r['hash'] for r in rs]}")
    a = np.concatenate([r["diag"] for r in runs["text"]])
    b = np.concatenate([r["diag"] for r in runs["text+motion"]])
    diff = b - a
    lo, hi = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
    w = stats.wilcoxon(b, a)
    print(f"paired diag difference (text+motion - text) over {len(diff)} cells: {diff.mean():+.3f} "
          f"t 95% CI [{lo:+.3f}, {hi:+.3f}], {int((diff > 0).sum())}/{len(diff)} up, Wilcoxon p {w.pvalue:.3f}")
    # the untrained row with the evaluation's own per-cell 95% CI (5 reshuffles), against 1/32
    for r, run in zip(runs["text+motion"], ARMS["text+motion"]):
        ci = pd.read_csv(run / "matrices" / "baseline.csv", index_col=0).loc["r_precision_top1_ci95"]
        print(f"{run.name} untrained R@1 per subset " + ", ".join(
            f"{v:.3f} ± {c:.3f}" for v, c in zip(r["base_r1"], ci.to_numpy(float))) + " (chance 0.031)")

if __name__ == "__main__":
    main()
