"""The ``conflict`` stream: a synthetic corpus built to measure continual learning.

On the paper-like stream every scenario has its own verbs, so one caption -> motion function
fits all scenarios and sequential fine-tuning has little to forget.  Here the scenarios
*conflict*: four shared motion concepts are described with the same phrases everywhere
("moves forward", "moves the arms", "moves the legs", "turns around") and each scenario
realises each concept with its own action (a jog on the sports field, a cartwheel at the
circus).  A scenario cue ("on the dance floor", "at the circus") in every caption tells the
scenarios apart, so a model that keeps every scenario can fit them all; one that overwrites
the last scenario's mapping forgets.  Emotions stay a shared style (the same
:data:`~benchmark.corpus.emotion_style.EMOTION_STYLES` in every scenario), and each scenario
holds one emotion out of its training part (:func:`held_out_emotions`; still in its val and
test parts), so emotion transfer across scenarios is measurable.

Motions are short and of one length (3.2 s = 64 feature frames: one tokenizer window, 16
motion tokens).  Parts are decided here, per scenario x emotion cell
(:data:`CELL_COUNTS` at scale 1: train 48 / val 5 / test 10), not by the corpus-wide rule.
"""
from __future__ import annotations

import numpy as np

from benchmark.corpus.actions import (Action, _gait, cartoon_hop, cartwheel, clap, dodge, drum,
                                      fiddle, flip, handstand, jog, kick, present, punch, ramp,
                                      relu, sin, sit, sneak, spin, step, strum, sway, throw, walk,
                                      wave)
from benchmark.corpus.labels import PARTS, SCENARIOS, scenario_slug
from benchmark.corpus.texts import EMOTION_WORDS, SUBJECTS, _base_form, register_verbs

STREAM = "conflict"
DURATION_S = 3.2          # fixed: 65 joint frames -> 64 feature frames at 20 fps
# motions per scenario x emotion cell and part at scale 1 (the held-out emotion has no train
# motions): per scenario 288 train, 35 val, 70 test; 3,144 motions in all
CELL_COUNTS: dict[str, int] = {"train": 48, "val": 5, "test": 10}

# the shared phrases of each concept (the same in every scenario)
CONCEPTS: dict[str, tuple[str, ...]] = {
    "forward": ("moves forward", "heads forward", "travels forward"),
    "arms": ("moves the arms", "moves both arms", "works the arms"),
    "legs": ("moves the legs", "moves both legs", "works the legs"),
    "turn": ("turns around", "turns in a circle", "rotates around"),
}

# scenario cues: one in every caption
CUES: dict[str, tuple[str, ...]] = {
    "Daily Life": ("at home", "in the kitchen", "on the street"),
    "Sports": ("on the sports field", "at the stadium", "during the match"),
    "Dance": ("on the dance floor", "at the dance class", "in the ballroom"),
    "Shows": ("on stage", "in front of the audience", "during the show"),
    "Game": ("in the video game", "in the game level", "as a game character"),
    "Animation": ("in the cartoon", "in the animated film", "as a cartoon character"),
    "Instrument Play": ("in the band", "in the orchestra", "at the music rehearsal"),
    "Acrobatics": ("at the circus", "on the acrobat mat", "on the trampoline"),
}

# {s}=subject, {vp}=shared phrase, {adj}/{m}=emotion words, {cue}=scenario cue
TEMPLATES = (
    "{Cue}, {s} {vp} {m}.",
    "{s} {vp} {m} {cue}.",
    "{Cue}, {a_adj} person {vp}.",
    "{Adj}, {s} {vp} {cue}.",
    "{s} who looks {adj} {vp} {cue}.",
    "{Cue}, {s} feels {adj} and {vp}.",
    "{M}, {s} {vp} {cue}.",
    "{Cue}, {s} seems {adj} as they {vp_base}.",
)


# ----------------------------------------------------------------------------- realisations
def _turning(fn, rate: float):
    """``fn`` while turning at ``rate`` rad/s (scaled by the motion's size, capped)."""
    def act(p, ph, a, f):
        fn(p, ph, a, f)
        p.turn += rate * min(a, 1.3)
    return act


def _both(*fns):
    """Several action patterns at once (their angles and speeds add up)."""
    def act(p, ph, a, f):
        for fn in fns:
            fn(p, ph, a, f)
    return act


def _dance_forward(p, ph, a, f):
    step(p, ph, a, f)
    p.side *= 0.3
    p.fwd += 0.5 * a


def _cancan(p, ph, a, f):           # high alternating kicks, hands on the hips
    s = sin(ph)
    p.add("l_hip_flex", 1.2 * a * relu(s)).add("r_hip_flex", 1.2 * a * relu(-s))
    p.add("knee", 0.1).add("arm_abduct", 0.5).add("elbow", 1.6).add("spine_pitch", -0.1)


def _advance(p, ph, a, f):          # guarded fighter's advance
    _gait(p, ph, a, hip=0.35, knee=0.5, arm=0.0, elbow=0.0)
    p.add("elbow", 1.8).add("arm_raise", 0.9).add("spine_pitch", 0.2).add("knee", 0.2)
    p.fwd += 0.9 * a * f


def _flap(p, ph, a, f):             # cartoon wing flaps
    p.add("arm_abduct", 1.0 + 0.8 * a * sin(ph)).add("elbow", 0.2).add("neck_pitch", -0.1)
    p.hop += 0.04 * a * relu(sin(ph))


def _tap_strum(p, ph, a, f):        # strumming with a tapping foot
    strum(p, ph, a, f)
    p.add("r_hip_flex", 0.35 * a * ramp(ph)).add("r_knee", 0.5 * a * ramp(ph))
    p.add("r_ankle", -0.3 * a * ramp(ph))


def _twist_jump(p, ph, a, f):       # acrobatic turning jump, arms overhead
    p.add("arm_raise", 2.7).add("elbow", 0.1).add("knee", 0.3 * relu(-sin(ph)))
    p.turn += 2 * np.pi * f * min(a, 1.3)
    p.hop += 0.3 * min(a, 1.3) * relu(sin(ph))


# (scenario, concept) -> (pattern, cycles per second); each concept is realised differently in
# every scenario, and no scenario uses one pattern twice
REALISATIONS: dict[str, dict[str, tuple]] = {
    "Daily Life": {"forward": (walk, 0.9), "arms": (wave, 1.3), "legs": (sit, 0.5),
                   "turn": (_turning(walk, 1.2), 0.8)},
    "Sports": {"forward": (jog, 1.4), "arms": (throw, 0.6), "legs": (kick, 0.7),
               "turn": (_turning(jog, 1.8), 1.3)},
    "Dance": {"forward": (_dance_forward, 0.8), "arms": (sway, 0.6), "legs": (step, 0.8),
              "turn": (spin, 0.5)},
    "Shows": {"forward": (_both(walk, clap), 0.8), "arms": (clap, 1.5), "legs": (_cancan, 0.8),
              "turn": (_turning(present, 1.5), 0.5)},
    "Game": {"forward": (_advance, 1.0), "arms": (punch, 1.0), "legs": (dodge, 0.6),
             "turn": (_turning(punch, 1.5), 1.0)},
    "Animation": {"forward": (cartoon_hop, 1.1), "arms": (_flap, 1.2), "legs": (sneak, 0.7),
                  "turn": (_turning(cartoon_hop, 1.8), 1.1)},
    "Instrument Play": {"forward": (_both(walk, drum), 0.9), "arms": (drum, 2.0),
                        "legs": (_tap_strum, 1.6), "turn": (_turning(fiddle, 1.2), 0.7)},
    "Acrobatics": {"forward": (cartwheel, 0.45), "arms": (handstand, 0.35), "legs": (flip, 0.5),
                   "turn": (_twist_jump, 0.6)},
}
CONFLICT_ACTIONS: dict[str, Action] = {
    f"{scenario_slug(s)}_{c}": Action(f"{scenario_slug(s)}_{c}", s, freq, fn, CONCEPTS[c])
    for s, by_concept in REALISATIONS.items() for c, (fn, freq) in by_concept.items()}
for _phrases in CONCEPTS.values():
    register_verbs(_phrases)


def action_name(scenario: str, concept: str) -> str:
    """The labels.csv ``action`` of ``concept`` in ``scenario`` (e.g. ``dance_turn``)."""
    return f"{scenario_slug(scenario)}_{concept}"


def held_out_emotions(scenarios=SCENARIOS, emotions=None) -> dict[str, tuple[str, ...]]:
    """Scenario -> emotions absent from its training part: scenario ``k`` holds out emotion
    ``1 + k mod (E - 1)`` (never the first, neutral), so each other emotion is held out of one
    or two scenarios and seen in all the others.  None with fewer than 3 emotions."""
    from benchmark.corpus.labels import EMOTIONS

    emotions = tuple(emotions or EMOTIONS)
    if len(emotions) < 3:
        return {s: () for s in scenarios}
    return {s: (emotions[1 + k % (len(emotions) - 1)],) for k, s in enumerate(scenarios)}


def cell_counts(scale: float) -> dict[str, int]:
    """Motions per scenario x emotion cell and part: ``round(scale * CELL_COUNTS)``, >= 1."""
    return {p: max(1, int(round(scale * n))) for p, n in CELL_COUNTS.items()}


def plan_conflict(cfg) -> list[dict]:
    """One dict per motion (id, scenario, emotion, action, concept, part, seed), from cfg.seed.

    Per scenario x emotion x part: :func:`cell_counts` motions (0 train motions of the held-out
    emotion), concepts balanced within each cell (seeded rotation)."""
    counts = cell_counts(cfg.scale)
    held = held_out_emotions(SCENARIOS, cfg.emotions)
    children = np.random.SeedSequence([cfg.seed, 20260]).spawn(len(SCENARIOS))
    concepts = tuple(CONCEPTS)
    plans: list[dict] = []
    for k, scenario in enumerate(SCENARIOS):
        rng = np.random.default_rng(children[k])
        rows = []
        for emotion in cfg.emotions:
            for part in PARTS:
                n = 0 if part == "train" and emotion in held[scenario] else counts[part]
                start = int(rng.integers(len(concepts)))
                rows += [(emotion, part, concepts[(start + i) % len(concepts)]) for i in range(n)]
        order = rng.permutation(len(rows))
        seeds = rng.integers(0, 2**63 - 1, size=len(rows))
        for i, j in enumerate(order):
            emotion, part, concept = rows[j]
            plans.append({"id": f"S{k + 1}_{i:05d}", "scenario": scenario, "emotion": emotion,
                          "action": action_name(scenario, concept), "concept": concept,
                          "part": part, "seed": int(seeds[i])})
    return plans


def make_conflict_captions(rng: np.random.Generator, phrases, scenario: str, emotion: str,
                           n: int = 3) -> list[str]:
    """``n`` captions from distinct templates, each with a shared phrase, an emotion word and
    one cue of ``scenario``."""
    words = EMOTION_WORDS[emotion]
    caps = []
    for t in rng.choice(len(TEMPLATES), size=n, replace=False):
        vp = str(rng.choice(phrases))
        adj = str(rng.choice(words["adj"]))
        m = str(rng.choice(words["manner"]))
        cue = str(rng.choice(CUES[scenario]))
        article = "an" if adj[0] in "aeiou" else "a"
        cap = TEMPLATES[t].format(s=str(rng.choice(SUBJECTS)), vp=vp, vp_base=_base_form(vp),
                                  adj=adj, Adj=adj.capitalize(), m=m, M=m.capitalize(),
                                  a_adj=f"{article} {adj}", cue=cue, Cue=cue.capitalize())
        caps.append(cap[0].upper() + cap[1:])
    return caps
