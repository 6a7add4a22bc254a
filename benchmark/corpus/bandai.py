"""``l2emg data bandai``: the Bandai-Namco Research Motiondataset as an L2-EMG corpus.

Source: the public repository BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset (or the
shared copy); CC BY-NC 4.0; Kobayashi et al., arXiv:2306.08861.  Files are
``dataset-N_{content}_{style}_{take}.bvh`` (found recursively under ``--src``).

* **Scenarios** group the contents (:data:`SCENARIO_CONTENTS`, in this order = order 1;
  override with ``--scenario-map`` JSON/CSV content -> scenario, whose order then counts).
  Scenarios with fewer than ``--min-motions`` motions are left out and reported (the shared
  copy has 6 fighting/dance motions: too few for a test part).
* **Emotions** are the styles (``masculinity`` of dataset 1 is read as ``masculine``, the same
  style in dataset 2), ``normal`` first, then in the datasets' own label order.
* **Captions**: three per motion from templates over a phrase of the content and words of the
  style, e.g. "a person walks forward proudly.", "someone waves the left hand, looking tired."
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.io import DataError

SCENARIO_CONTENTS: dict[str, tuple[str, ...]] = {
    "Locomotion": ("walk", "run", "dash"),
    "Turning and Stepping": ("walk-back", "walk-left", "walk-right", "walk-turn-left",
                             "walk-turn-right"),
    "Greetings": ("bow", "bye", "byebye", "call", "respond", "guide", "wave-left-hand",
                  "wave-right-hand", "wave-both-hands"),
    "Raising Hands": ("raise-up-left-hand", "raise-up-right-hand", "raise-up-both-hands"),
    "Fighting and Dance": ("punch", "kick", "slash", "dance-short", "dance-long"),
}
CONTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "walk": ("walks forward", "walks straight ahead"), "run": ("runs forward", "jogs ahead"),
    "dash": ("dashes forward", "sprints ahead"), "walk-back": ("walks backwards",),
    "walk-left": ("walks to the left", "steps sideways to the left"),
    "walk-right": ("walks to the right", "steps sideways to the right"),
    "walk-turn-left": ("walks and turns left",), "walk-turn-right": ("walks and turns right",),
    "bow": ("bows", "bows to someone"), "bye": ("waves goodbye",),
    "byebye": ("waves bye bye", "waves goodbye repeatedly"),
    "call": ("calls someone over", "beckons someone"), "respond": ("responds to someone",),
    "guide": ("shows someone the way", "points the way"),
    "wave-left-hand": ("waves the left hand",), "wave-right-hand": ("waves the right hand",),
    "wave-both-hands": ("waves both hands",), "raise-up-left-hand": ("raises the left hand",),
    "raise-up-right-hand": ("raises the right hand",),
    "raise-up-both-hands": ("raises both hands",), "punch": ("throws a punch", "punches"),
    "kick": ("kicks",), "slash": ("slashes with a sword",), "dance-short": ("dances",),
    "dance-long": ("dances",),
}
# style -> (manner phrases, adjectives)
STYLE_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "normal": (("normally", "in a neutral way"), ("calm", "neutral")),
    "happy": (("happily", "joyfully"), ("happy", "cheerful")),
    "sad": (("sadly", "sorrowfully"), ("sad", "gloomy")),
    "angry": (("angrily", "furiously"), ("angry", "annoyed")),
    "proud": (("proudly", "with pride"), ("proud", "confident")),
    "not-confident": (("timidly", "without confidence"), ("unconfident", "insecure")),
    "masculine": (("in a masculine way", "manfully"), ("masculine", "manly")),
    "feminine": (("in a feminine way", "gracefully"), ("feminine", "graceful")),
    "childish": (("childishly", "like a child"), ("childish", "playful")),
    "old": (("like an old person", "slowly and stiffly"), ("old", "frail")),
    "tired": (("wearily", "sluggishly"), ("tired", "weary")),
    "active": (("energetically", "actively"), ("active", "energetic")),
    "musical": (("theatrically", "like a musical performer"), ("theatrical", "showy")),
    "giant": (("like a giant", "heavily"), ("giant", "huge")),
    "chimpira": (("like a street thug", "swaggering"), ("thuggish", "cocky")),
    "elderly": (("like an elderly person", "carefully"), ("elderly", "aged")),
    "exhausted": (("exhaustedly", "with exhaustion"), ("exhausted", "worn out")),
    "youthful": (("youthfully", "with youthful energy"), ("youthful", "lively")),
}
STYLE_ALIASES = {"masculinity": "masculine"}
TEMPLATES = ("{s} {vp} {m}.", "{s} {vp}, looking {adj}.", "{a} {adj} person {vp}.",
             "{M}, {s} {vp}.", "{s} {vp} in a {adj} manner.")
SUBJECTS = ("a person", "someone", "the person", "a man", "a woman", "the actor")
NAME = re.compile(r"^(dataset-\d+)_(.+?)_(.+?)_(\d+)$")


def style_name(style: str) -> str:
    return STYLE_ALIASES.get(style, style)


def captions(content: str, style: str, motion_id: str, n: int = 3) -> list[str]:
    """``n`` captions from distinct templates, seeded by the motion id."""
    from benchmark.corpus.parts import _key

    rng = np.random.default_rng(int(_key(0, motion_id) * 2**32))
    phrases = CONTENT_PHRASES.get(content, (f"performs {content.replace('-', ' ')}",))
    manners, adjs = STYLE_WORDS.get(style, ((f"in a {style} style",), (style,)))
    out = []
    for t in rng.choice(len(TEMPLATES), size=n, replace=False):
        adj = str(rng.choice(adjs))
        m = str(rng.choice(manners))
        cap = TEMPLATES[t].format(s=str(rng.choice(SUBJECTS)), vp=str(rng.choice(phrases)),
                                  m=m, M=m, adj=adj, a="an" if adj[0] in "aeiou" else "a")
        out.append(cap[0].upper() + cap[1:])
    return out


def _style_order(src: Path) -> list[str]:
    """Styles in the datasets' own label order (cfg/style_label.txt), normal first."""
    order = []
    for f in sorted(src.rglob("style_label.txt")):
        for line in f.read_text(encoding="utf-8").split():
            order.append(style_name(line.split("_", 1)[-1]))
    order = list(dict.fromkeys(["normal", *order]))
    return order


def plan_bandai(src: Path, scenario_map: dict[str, str] | None = None, min_motions: int = 10
                ) -> tuple[pd.DataFrame, list[str], list[str], dict[str, int]]:
    """Rows to import, scenarios, emotions and the scenarios left out (name -> motions)."""
    if not src.is_dir():
        raise DataError(src, "--src folder not found", "pass a clone of "
                        "BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset or its copy")
    files = sorted(p for p in src.rglob("dataset-*_*.bvh") if p.is_file())
    if not files:
        raise DataError(src, "has no dataset-N_{content}_{style}_{take}.bvh files",
                        "pass the repository's root (or its dataset folders)")
    smap = scenario_map or {c: s for s, cs in SCENARIO_CONTENTS.items() for c in cs}
    rows, unknown = [], set()
    for f in files:
        m = NAME.match(f.stem)
        if not m:
            raise DataError(f, "name is not dataset-N_{content}_{style}_{take}.bvh",
                            "rename it or remove it from --src")
        content, style = m.group(2), style_name(m.group(3))
        if content not in smap:
            unknown.add(content)
            continue
        rows.append({"path": f, "id": f.stem, "scenario": smap[content], "emotion": style,
                     "texts": captions(content, style, f.stem), "part": None,
                     "content": content})
    if unknown:
        raise DataError(src, f"content(s) {sorted(unknown)} have no scenario",
                        "add them to --scenario-map (content -> scenario)")
    plan = pd.DataFrame(rows)
    sizes = plan.groupby("scenario").size()
    dropped = {s: int(n) for s, n in sizes.items() if n < min_motions}
    plan = plan[~plan["scenario"].isin(dropped)].reset_index(drop=True)
    scenarios = [s for s in dict.fromkeys(smap.values()) if s in set(plan["scenario"])]
    styles = _style_order(src)
    emotions = [e for e in styles if e in set(plan["emotion"])]
    emotions += sorted(set(plan["emotion"]) - set(emotions))
    return plan, scenarios, emotions, dropped


def build_bandai(src: str | os.PathLike, out: str | os.PathLike,
                 scenario_map: dict[str, str] | None = None, min_motions: int = 10,
                 skip_bad: bool = False, seed: int = 0, overwrite: bool = False,
                 log=print) -> Path:
    from benchmark.corpus.bvh_import import BvhImportConfig, write_plan
    from benchmark.corpus.texts import register_verbs

    src = Path(src)
    plan, scenarios, emotions, dropped = plan_bandai(src, scenario_map, min_motions)
    for s, n in dropped.items():
        log(f"l2emg: left out scenario {s!r}: {n} motion(s) < --min-motions {min_motions}")
    register_verbs([p for ps in CONTENT_PHRASES.values() for p in ps])
    config = {"dataset": "bandai-namco-research-motiondataset", "licence": "CC BY-NC 4.0",
              "src": str(src), "scenario_contents": {s: sorted(set(g["content"])) for s, g in
                                                     plan.groupby("scenario")},
              "left_out": dropped, "min_motions": min_motions}
    return write_plan(plan, out, BvhImportConfig(skeleton="bandai"), scenarios, emotions,
                      skip_bad=skip_bad, source="bandai-namco", config=config, seed=seed,
                      overwrite=overwrite, where=src)


def bandai_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", required=True, type=Path,
                   help="clone of Bandai-Namco-Research-Motiondataset (or the shared copy)")
    p.add_argument("--out", required=True, type=Path, help="corpus folder to create")
    p.add_argument("--scenario-map", type=Path, default=None,
                   help="content -> scenario (JSON or CSV content,scenario) instead of the default")
    p.add_argument("--min-motions", type=int, default=10,
                   help="leave out (and report) scenarios with fewer motions (default 10)")
    p.add_argument("--skip-bad", action="store_true", help="import the others if a file is bad")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val/test parts")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")


def bandai(args: argparse.Namespace) -> int:
    from benchmark.corpus import load_corpus
    from benchmark.corpus.bvh_import import read_scenario_map

    smap = read_scenario_map(args.scenario_map) if args.scenario_map else None
    out = build_bandai(args.src, args.out, smap, args.min_motions, args.skip_bad, args.seed,
                       args.overwrite)
    corpus = load_corpus(out, validate=False)
    print(f"wrote {len(corpus)} Bandai-Namco motions ({len(corpus.scenarios)} scenarios, "
          f"{len(corpus.emotions)} emotions) to {out} (content hash {corpus.content_hash}); "
          f"counts: l2emg data info --data {out}")
    return 0
