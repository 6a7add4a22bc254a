import sys, json
import numpy as np, pandas as pd
from pathlib import Path
from scipy.stats import wilcoxon
REF = Path("/work/main/docs/results-long/third-build")
NEW = Path("/tmp/s18/runs")
def load(d):
    d = Path(d); r = json.loads((d/"result.json").read_text())
    m = {k: pd.read_csv(d/"matrices"/f"{k}.csv", index_col=0) for k in ("r_precision_top1","fid","multimodality","diversity")}
    return r, m
def diag(m, k="r_precision_top1"):
    a = m[k].values; return np.array([a[i, i] for i in range(a.shape[0])])
allnew, allref = [], []
for tag in sys.argv[1:]:            # e.g. seq_lora:o1-s0
    meth, os_ = tag.split(":")
    r0, m0 = load(REF/f"{meth}-unseen-{os_}"); r1, m1 = load(NEW/f"{meth}-topk5-unseen-{os_}")
    ceil = r0["ground_truth"]["r_precision_top1"]
    print(f"== {meth} {os_}  ceiling {ceil:.3f} (new run's {r1['ground_truth']['r_precision_top1']:.3f})")
    tl0 = pd.read_csv(REF/f"{meth}-unseen-{os_}"/"train_log.csv"); tl1 = pd.read_csv(NEW/f"{meth}-topk5-unseen-{os_}"/"train_log.csv")
    print("train_log identical:", tl0.equals(tl1), "first rows", tl0.iloc[0].tolist(), tl1.iloc[0].tolist())
    b0 = m0["r_precision_top1"]; 
    for name, r, m in (("top-k 50", r0, m0), ("top-k 5", r1, m1)):
        a = r["aggregates"]; ci = r.get("aggregates_ci95", {})
        line = f"{name}: AR {a['AR']:.3f}±{ci.get('AR', float('nan')):.3f} FR {a['FR']:.1f} floor q95 {r['fr_floor'].get('q95', float('nan')):.1f} BWT {a['BWT']:.1f} FWT {a['FWT']:.1f} AF {a['AF']:.2f} AMM {a['AMM']:.2f} AD {a['AD']:.2f}"
        if meth != "mtl":
            d = diag(m); line += f" | diag {d.mean():.3f} ({100*d.mean()/ceil:.1f}% of ceiling) FIDdiag {diag(m,'fid').mean():.2f} MMdiag {diag(m,'multimodality').mean():.2f}"
        fr = r["final"]; line += f" | final R@1 {np.mean(fr['r_precision_top1']):.3f} final FID {np.mean(fr['fid']):.2f} final MM {np.nanmean(fr['multimodality']):.2f}"
        print(line)
    bl0 = pd.read_csv(REF/f"{meth}-unseen-{os_}"/"matrices"/"baseline.csv", index_col=0); bl1 = pd.read_csv(NEW/f"{meth}-topk5-unseen-{os_}"/"matrices"/"baseline.csv", index_col=0)
    print("baseline R@1 mean 50 / 5:", bl0.loc["r_precision_top1"].mean().round(4), bl1.loc["r_precision_top1"].mean().round(4))
    if meth != "mtl":
        d0, d1 = diag(m0), diag(m1); allref += list(d0); allnew += list(d1)
        print("diag diff per subset", np.round(d1 - d0, 3), "up", int((d1 > d0).sum()), "/", len(d0), "p", wilcoxon(d1, d0).pvalue)
    f0, f1 = np.array(r0["final"]["r_precision_top1"]), np.array(r1["final"]["r_precision_top1"])
    print("final-row diff", np.round(f1 - f0, 3), "mean", (f1 - f0).mean().round(4), "p", wilcoxon(f1, f0).pvalue)
if allnew:
    a, b = np.array(allnew), np.array(allref)
    print(f"POOLED diag: top-k 5 {a.mean():.3f}, top-k 50 {b.mean():.3f}, diff {(a-b).mean():+.3f}, up {(a>b).sum()}/{len(a)}, p {wilcoxon(a,b).pvalue:.3g}")
