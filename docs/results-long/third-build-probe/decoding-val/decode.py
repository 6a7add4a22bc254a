import sys, json, time, dataclasses
from pathlib import Path
import torch
from benchmark.io import read_json
from harness.floor import config_from_record
from harness.runner import prepare, thread_limits

run_dir, cache = Path(sys.argv[1]), sys.argv[2]
ks = [int(k) for k in sys.argv[3].split(",")]
out = []
with thread_limits(1):
    rec, res = read_json(run_dir / "config.json"), read_json(run_dir / "result.json")
    cfg = config_from_record(rec, out=str(run_dir), progress=False, cache=cache, threads=1)
    st = prepare(cfg, reopen=True)
    assert st.record["config_hash"] == rec["config_hash"], (st.record["config_hash"], rec["config_hash"])
    ck = torch.load(run_dir / "checkpoints" / "state.pt", map_location="cpu", weights_only=False)
    st.strategy.restore(ck["strategy"])
    n = int(res["n_experiences"]); base = st.scorer.gen
    for k in ks:
        t = time.time()
        st.scorer.gen = dataclasses.replace(base, top_k=k)
        cells = [st.scorer.cell(st.strategy, n, j)[0] for j in range(len(st.names))]
        row = {m: [float(c[m]) for c in cells] for m in ("r_precision_top1", "r_precision_top3", "fid", "diversity", "multimodality", "emotion_f1")}
        row.update(top_k=k, wall=time.time() - t)
        if k == base.top_k:
            row["reproduces"] = all(abs(a - b) < 1e-9 for a, b in zip(row["r_precision_top1"], res["final"]["r_precision_top1"]))
        print(json.dumps(row), flush=True); out.append(row)
res_out = dict(run=str(run_dir), subsets=st.names, ceiling=res["ground_truth_per_subset"] if "ground_truth_per_subset" in res else None, rows=out)
(Path("/tmp/s17") / f"decode-{run_dir.name}.json").write_text(json.dumps(res_out, indent=1))
