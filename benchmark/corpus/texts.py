"""Paraphrased emotional captions and a small lexicon part-of-speech tagger.

Every caption names the action (a verb phrase of the action's repertoire) and the emotion
(an adjective or a manner phrase from a per-emotion word list), through varied templates and
subjects, e.g. ``"a person walks forward sorrowfully."``, ``"furious, the man throws a ball."``.
"""
from __future__ import annotations

import re

import numpy as np

# adjectives (ADJ) and manner phrases (after the verb phrase) per emotion
EMOTION_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "neutral": {"adj": ("calm", "neutral", "composed", "relaxed", "indifferent"),
                "manner": ("calmly", "casually", "with a neutral expression", "in a neutral mood",
                           "without emotion")},
    "happy": {"adj": ("happy", "joyful", "cheerful", "delighted", "glad", "elated"),
              "manner": ("happily", "joyfully", "cheerfully", "gleefully", "with joy",
                         "in a happy mood")},
    "sad": {"adj": ("sad", "sorrowful", "dejected", "unhappy", "downcast", "gloomy"),
            "manner": ("sadly", "sorrowfully", "dejectedly", "gloomily", "with sadness",
                       "in sorrow")},
    "angry": {"adj": ("angry", "furious", "enraged", "irritated", "mad", "annoyed"),
              "manner": ("angrily", "furiously", "aggressively", "with anger", "in a rage",
                         "in fury")},
    "fearful": {"adj": ("fearful", "scared", "frightened", "afraid", "terrified", "nervous"),
                "manner": ("fearfully", "nervously", "timidly", "anxiously", "in fear",
                           "with fear")},
    "surprised": {"adj": ("surprised", "astonished", "amazed", "startled", "shocked"),
                  "manner": ("in surprise", "with astonishment", "in amazement",
                             "with a startled look", "in shock")},
    "disgusted": {"adj": ("disgusted", "repulsed", "revolted", "sickened", "appalled"),
                  "manner": ("with disgust", "in disgust", "with revulsion",
                             "with a disgusted look", "in revulsion")},
}

SUBJECTS = ("a person", "someone", "the man", "a man", "the woman", "a woman", "the person",
            "a figure", "the performer", "a character")

# {s}=subject, {vp}=verb phrase, {adj}=emotion adjective, {m}=manner phrase
TEMPLATES = (
    "{s} {vp} {m}.",
    "{s} who looks {adj} {vp}.",
    "{Adj}, {s} {vp}.",
    "{s} {vp} and looks {adj}.",
    "{s} feels {adj} and {vp}.",
    "{A_adj} person {vp}.",
    "{M}, {s} {vp}.",
    "{s} seems {adj} as they {vp_base}.",
)

_CLOSED = {
    "DET": {"a", "an", "the", "his", "her", "their", "its", "each", "both", "another", "some"},
    "PRON": {"someone", "they", "he", "she", "it", "who", "something", "them", "itself",
             "themselves", "himself", "herself"},
    "ADP": {"with", "in", "on", "at", "to", "of", "from", "into", "over", "around", "without",
            "as", "across", "toward", "towards", "through", "by", "for", "like", "onto", "off"},
    "CCONJ": {"and", "or", "but", "then", "while"},
    "ADV": {"forward", "back", "backward", "backwards", "up", "down", "away", "again", "around",
            "sideways", "aside", "together", "repeatedly", "fast", "high", "low", "out",
            "in place", "twice", "over", "still"},
    "AUX": {"is", "are", "was", "be"},
    "NUM": {"one", "two", "three", "once"},
}
_VERBS: set[str] = {"looks", "feels", "seems", "look", "feel", "seem"}
_ADJ: set[str] = {w for e in EMOTION_WORDS.values() for p in e["adj"] for w in p.split()}
_ADJ |= {"left", "right", "big", "small", "exaggerated", "cartoonish", "low", "quick",
         "neutral", "startled", "disgusted", "happy", "sad", "angry", "invisible", "imaginary"}


def register_verbs(phrases) -> None:
    """Teach the tagger the verbs of action phrases (their first word, and words after 'and')."""
    for p in phrases:
        words = p.replace("{side}", "right").split()
        _VERBS.add(words[0])
        for a, b in zip(words, words[1:]):
            if a in ("and", "then"):
                _VERBS.add(b)


def pos_tag(caption: str) -> list[tuple[str, str]]:
    """Lower-cased words of ``caption`` (punctuation dropped) with a universal POS tag each."""
    out = []
    for w in re.findall(r"[a-z0-9']+", caption.lower()):
        if w in _VERBS:
            tag = "VERB"
        elif w in _ADJ:
            tag = "ADJ"
        else:
            tag = next((t for t, ws in _CLOSED.items() if w in ws), None)
            if tag is None:
                tag = "ADV" if w.endswith("ly") else "NUM" if w.isdigit() else "NOUN"
        out.append((w, tag))
    return out


def _base_form(vp: str) -> str:
    """'walks forward' -> 'walk forward' (third person -> base form of each leading verb)."""
    def base(v: str) -> str:
        if v.endswith(("ches", "shes", "sses", "xes")):
            return v[:-2]
        if v.endswith("ies"):
            return v[:-3] + "y"
        return v[:-1] if v.endswith("s") and not v.endswith("ss") else v
    words = vp.split()
    words[0] = base(words[0])
    for k in range(1, len(words)):
        if words[k - 1] in ("and", "then") and words[k] in _VERBS:
            words[k] = base(words[k])
    return " ".join(words)


def make_captions(rng: np.random.Generator, phrases, emotion: str, side: str = "right",
                  n: int = 3) -> list[str]:
    """``n`` captions from distinct templates naming one of ``phrases`` and ``emotion``."""
    words = EMOTION_WORDS[emotion]
    caps = []
    for t in rng.choice(len(TEMPLATES), size=n, replace=False):
        vp = str(rng.choice(phrases)).replace("{side}", side)
        adj = str(rng.choice(words["adj"]))
        m = str(rng.choice(words["manner"]))
        article = "an" if adj[0] in "aeiou" else "a"
        cap = TEMPLATES[t].format(s=str(rng.choice(SUBJECTS)), vp=vp, vp_base=_base_form(vp),
                                  adj=adj, Adj=adj.capitalize(), m=m, M=m.capitalize(),
                                  A_adj=f"{article.capitalize()} {adj}")
        caps.append(cap[0].upper() + cap[1:])
    return caps
