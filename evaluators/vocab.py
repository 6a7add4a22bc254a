"""Word vocabulary of the text encoder, a deterministic part-of-speech tagger and optional
GloVe-style vectors.

Captions become ``sos w1 .. wL eos`` (at most ``max_text_len`` words, as the original
evaluator's 20) with a one-hot part of speech per token over :data:`POS_ENUMERATOR` (the 15
categories of the released T2M evaluator, including its "VIP" word lists).  The tagger is a
small lexicon + suffix rules (no spaCy), identical at training and evaluation time.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from benchmark.io import DataError

POS_ENUMERATOR: dict[str, int] = {
    "VERB": 0, "NOUN": 1, "DET": 2, "ADP": 3, "NUM": 4, "AUX": 5, "PRON": 6, "ADJ": 7, "ADV": 8,
    "Loc_VIP": 9, "Body_VIP": 10, "Obj_VIP": 11, "Act_VIP": 12, "Desc_VIP": 13, "OTHER": 14,
}
_VIP = {
    "Loc_VIP": "left right clockwise counterclockwise anticlockwise forward back backward up down "
               "straight curve",
    "Body_VIP": "arm chin foot feet face hand mouth leg waist eye knee shoulder thigh",
    "Obj_VIP": "stair dumbbell chair window floor car ball handrail baseball basketball",
    "Act_VIP": "walk run swing pick bring kick put squat throw hop dance jump turn stumble stop sit "
               "lift lower raise wash stand kneel stroll rub bend balance flap jog shuffle lean "
               "rotate spin spread climb",
    "Desc_VIP": "slowly carefully fast careful slow quickly happy angry sad happily angrily sadly",
}
_CLOSED = {
    "DET": "a an the this that these those his her their its each every both another some any",
    "PRON": "someone he she it they them who something himself herself itself themselves one",
    "ADP": "with in on at to of from into over around without as across toward towards through "
           "by for like onto off up down after before behind under above between while",
    "AUX": "is are was were be been being has have had do does did can will would",
    "NUM": "one two three four five six seven eight nine ten once twice",
    "OTHER": "and or but then sos eos unk",
}
_LEXICON: dict[str, str] = {}
for _tag, _words in list(_CLOSED.items()) + list(_VIP.items()):
    for _w in _words.split():
        _LEXICON.setdefault(_w, _tag)
for _w in _VIP["Act_VIP"].split():       # inflections of the VIP actions keep their tag
    for _suf in ("s", "es", "ing", "ed", "d"):
        _LEXICON.setdefault(_w + _suf, "Act_VIP")

SPECIALS = ("unk", "sos", "eos")          # indices 0, 1, 2; padding uses "unk" (index 0)
_WORD_RE = re.compile(r"[a-z0-9']+")


def tokenize(caption: str) -> list[str]:
    """Lower-cased words; a HumanML3D line ``caption#w/POS ...#0.0#0.0`` keeps its caption."""
    return _WORD_RE.findall(caption.split("#", 1)[0].lower())


def pos_of(word: str) -> str:
    """Part of speech of one lower-cased word (lexicon first, then suffix rules)."""
    if word in _LEXICON:
        return _LEXICON[word]
    if word.isdigit():
        return "NUM"
    if word.endswith("ly"):
        return "ADV"
    if word.endswith(("ing", "ed")) or (word.endswith("s") and not word.endswith("ss")):
        return "VERB"
    if word.endswith(("ful", "ous", "ive", "ish", "ic", "al")):
        return "ADJ"
    return "NOUN"


@dataclass
class Vocabulary:
    """``words[i]`` is the word of index ``i``; ``words[:3] == SPECIALS``."""

    words: list[str]
    max_text_len: int = 20

    def __post_init__(self) -> None:
        if tuple(self.words[:3]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}")
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1, max_text_len: int = 20) -> "Vocabulary":
        """Vocabulary of the words seen at least ``min_count`` times (sorted by count, then word)."""
        counts = Counter(w for c in captions for w in tokenize(c))
        keep = sorted((w for w, n in counts.items() if n >= min_count and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + keep, max_text_len)

    def encode(self, caption: str) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and POS ids ``(L,)`` int64 for ``sos words[:max_text_len] eos``."""
        words = ["sos"] + tokenize(caption)[: self.max_text_len] + ["eos"]
        ids = np.array([self.index.get(w, 0) for w in words], dtype=np.int64)
        pos = np.array([POS_ENUMERATOR[pos_of(w)] for w in words], dtype=np.int64)
        pos[0] = pos[-1] = POS_ENUMERATOR["OTHER"]
        return ids, pos

    def encode_batch(self, captions: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Padded ids ``(B, Lmax)``, POS ids ``(B, Lmax)`` (pad = unk / OTHER) and lengths ``(B,)``."""
        enc = [self.encode(c) for c in captions]
        lens = np.array([len(i) for i, _ in enc], dtype=np.int64)
        ids = np.zeros((len(enc), int(lens.max())), dtype=np.int64)
        pos = np.full_like(ids, POS_ENUMERATOR["OTHER"])
        for k, (i, p) in enumerate(enc):
            ids[k, : len(i)] = i
            pos[k, : len(p)] = p
        return ids, pos, lens

    def unknown_rate(self, captions: Iterable[str]) -> float:
        """Fraction of caption words not in the vocabulary."""
        words = [w for c in captions for w in tokenize(c)]
        return float(np.mean([w not in self.index for w in words])) if words else 0.0


def load_vectors(path: str | os.PathLike, vocab: Vocabulary) -> tuple[np.ndarray, float]:
    """Rows of a GloVe-style text file (``word v1 .. vD`` per line) for ``vocab``: ``(V, D)``
    float32 and the fraction of vocabulary words found.  Missing words get the ``unk`` vector if
    the file has one, else zeros.  Only the needed rows are kept in memory.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "word-vector file not found", "pass a GloVe-style text file "
                        "(one 'word v1 v2 ...' per line)")
    found: dict[str, np.ndarray] = {}
    dim = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.rstrip().split(" ")
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise DataError(path, f"line {n} has {len(parts) - 1} values, expected {dim}",
                                "use a file with one fixed-size vector per line")
            if parts[0] in vocab.index:
                found[parts[0]] = np.asarray(parts[1:], dtype=np.float32)
    if dim is None or not found:
        raise DataError(path, "no vector for any vocabulary word", "check the file format/language")
    unk = found.get("unk", np.zeros(dim, np.float32))
    table = np.stack([found.get(w, unk) for w in vocab.words]).astype(np.float32)
    return table, len(found) / len(vocab)
