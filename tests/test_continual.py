"""Known-answer tests for evaluators.continual (hand-computed 3x3 matrices)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from evaluators.continual import (AGGREGATE_KEYS, DIRECTIONS, aggregates, backward_transfer,
                                  forgetting_rate, forward_transfer)

# r[i, j]: after experience i (rows), on subset j (cols)
R = np.array([[0.50, 0.10, 0.05],
              [0.30, 0.60, 0.20],
              [0.40, 0.45, 0.70]])


def test_forgetting_rate_hand_computed():
    # j=1: max(r11, r21) = 0.5 -> 0.5-0.4 = 0.1 ; j=2: max(r22) = 0.6 -> 0.6-0.45 = 0.15
    assert forgetting_rate(R) == pytest.approx((0.1 + 0.15) / 2)
    # the max runs over k = j..N-1 only: an earlier (zero-shot) row must not count
    r = np.array([[0.1, 0.9], [0.2, 0.3]])
    assert forgetting_rate(r) == pytest.approx(0.1 - 0.2)   # negative: later training helped


def test_bwt_fwt_hand_computed():
    assert backward_transfer(R) == pytest.approx(((0.40 - 0.50) + (0.45 - 0.60)) / 2)
    b = np.array([0.0, 0.05, 0.10])
    assert forward_transfer(R, b) == pytest.approx(((0.10 - 0.05) + (0.20 - 0.10)) / 2)
    assert math.isnan(forward_transfer(R, None))


def test_aggregates_all_keys_and_units():
    fid = np.arange(9, dtype=float).reshape(3, 3)
    mats = {"r_precision_top1": R, "r_precision_top3": R + 0.1, "fid": fid,
            "diversity": np.full((3, 3), 9.0), "emotion_f1": np.full((3, 3), 0.5),
            "multimodality": np.full((3, 3), np.nan)}
    out = aggregates(mats, baseline={"r_precision_top1": np.array([0.0, 0.05, 0.10])})
    assert set(out) == set(AGGREGATE_KEYS) == set(DIRECTIONS)
    assert out["AF"] == pytest.approx(7.0)              # mean of last row 6, 7, 8
    assert out["AR"] == pytest.approx((0.40 + 0.45 + 0.70) / 3)
    assert out["AR3"] == pytest.approx(out["AR"] + 0.1)
    assert out["AD"] == 9.0 and out["AWF"] == 0.5 and math.isnan(out["AMM"])
    assert out["FR"] == pytest.approx(12.5)             # percentage points
    assert out["BWT"] == pytest.approx(-12.5)
    assert out["FWT"] == pytest.approx(7.5)
    assert DIRECTIONS["AF"] == "lower" and DIRECTIONS["AR"] == "higher"


def test_single_experience_mtl():
    out = aggregates({"r_precision_top1": np.array([[0.4]]), "fid": np.array([[1.5]])})
    assert out["AR"] == pytest.approx(0.4) and out["AF"] == 1.5
    assert all(math.isnan(out[k]) for k in ("FR", "BWT", "FWT"))


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 3)), "square"),
    (np.zeros(3), "square"),
    (np.array([[0.1, np.nan], [0.2, 0.3]]), "NaN"),
])
def test_validation_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        aggregates({"r_precision_top1": bad})


def test_mismatched_sizes_and_unknown_keys():
    with pytest.raises(ValueError, match="sizes"):
        aggregates({"r_precision_top1": R, "fid": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="unknown"):
        aggregates({"accuracy": R})
    with pytest.raises(ValueError, match="baseline"):
        aggregates({"r_precision_top1": R}, baseline={"r_precision_top1": np.zeros(2)})
