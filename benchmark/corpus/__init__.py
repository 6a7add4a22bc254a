"""Corpora: the embedded synthetic emotional motion corpus and the HumanML3D-format reader/writer.

>>> from benchmark.corpus import build_corpus, load_corpus
>>> corpus = load_corpus(build_corpus("runs/corpus", scale=0.1, seed=0))
"""
from benchmark.corpus.humanml3d import (FEATURE_DIM, Corpus, Motion, finalize_corpus, load_corpus,
                                        read_npy_header, text_line, write_humanml3d,
                                        write_motion_files)
from benchmark.corpus.labels import (EMOTIONS, PART_FRACTIONS, PARTS, SCENARIOS, TABLE1_COUNTS,
                                     TABLE1_MIXED_SIZES, TABLE1_TOTAL, resolve_scenario,
                                     scenario_slug)
from benchmark.corpus.parts import assign_parts
from benchmark.corpus.synth import SynthConfig, build_corpus, scenario_counts

__all__ = [
    "FEATURE_DIM", "Corpus", "Motion", "finalize_corpus", "load_corpus", "read_npy_header",
    "text_line", "write_humanml3d", "write_motion_files", "EMOTIONS", "PART_FRACTIONS", "PARTS",
    "SCENARIOS", "TABLE1_COUNTS", "TABLE1_MIXED_SIZES", "TABLE1_TOTAL", "resolve_scenario",
    "scenario_slug", "assign_parts", "SynthConfig", "build_corpus", "scenario_counts",
]
