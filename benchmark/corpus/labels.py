"""The label spaces of L2-EMG: scenarios (Table 1 order) and emotions."""
from __future__ import annotations

# Table 1 of the paper, in its column order (= scenario order 1).
SCENARIOS: tuple[str, ...] = (
    "Daily Life", "Sports", "Dance", "Shows", "Game", "Animation", "Instrument Play", "Acrobatics",
)

# Motions per scenario in Table 1 (Unseen split); they sum to 19,916.
TABLE1_COUNTS: dict[str, int] = {
    "Daily Life": 5407, "Sports": 2191, "Dance": 2068, "Shows": 1101, "Game": 1618,
    "Animation": 1719, "Instrument Play": 3903, "Acrobatics": 1909,
}
TABLE1_TOTAL = 19916

# Mixed split of Table 1: 8 near-equal subsets.
TABLE1_MIXED_SIZES: tuple[int, ...] = (2489,) * 7 + (2493,)

# Default emotion set (configurable where a corpus or labels.csv says otherwise).
EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted")

PARTS: tuple[str, ...] = ("train", "val", "test")
PART_FRACTIONS: dict[str, float] = {"train": 0.8, "val": 0.05, "test": 0.15}


def scenario_slug(name: str) -> str:
    """'Instrument Play' -> 'instrument_play' (file and column friendly)."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def resolve_scenario(name: str, known: tuple[str, ...] = SCENARIOS) -> str:
    """Accept a scenario by name or slug, case-insensitively; raise ValueError listing valid ones."""
    key = scenario_slug(name)
    for s in known:
        if scenario_slug(s) == key:
            return s
    raise ValueError(f"unknown scenario {name!r}; valid: {', '.join(known)}")


assert sum(TABLE1_COUNTS.values()) == TABLE1_TOTAL == sum(TABLE1_MIXED_SIZES)
