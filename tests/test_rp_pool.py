"""R-precision with distractors drawn from the whole stream (``--rp-pool stream``): known
answers of the pure functions, the scorer's row, and the option's place in the config."""
import numpy as np
import pytest

from benchmark.io import DataError
from evaluators import metrics as M
from evaluators.protocol import EvalSettings
from evaluators.scoring import score_embeddings


def test_draw_distractors_never_draws_the_own_caption():
    rng = np.random.default_rng(0)
    pool = ["a", "b", "a", "c", "d", "a"]
    drawn = M.draw_distractors(["a", "c"], pool, 3, rng)
    assert drawn.shape == (2, 3)
    assert all(pool[k] != "a" for k in drawn[0]) and set(drawn[0]) == {1, 3, 4}
    assert all(pool[k] != "c" for k in drawn[1]) and len(set(drawn[1])) == 3
    with pytest.raises(ValueError, match="distinct pool texts"):
        M.draw_distractors(["a"], pool, 4, rng)


def test_pooled_r_precision_known_answer():
    # motion 0 sits on its text; motion 1 sits on distractor 0 (another scenario's caption)
    text = np.array([[0.0, 0.0], [10.0, 0.0]])
    motion = np.array([[0.0, 0.0], [0.0, 5.0]])
    pool = np.array([[0.0, 5.0], [100.0, 100.0], [50.0, 0.0]])
    drawn = np.array([[0, 1, 2], [0, 1, 2]])
    r = M.r_precision_pooled(text, motion, pool, drawn, top_k=3)
    # motion 1: own distance sqrt(125) ~ 11.2; distractor 0 at 0 is closer, 1 and 2 are not
    np.testing.assert_allclose(r, [0.5, 1.0, 1.0])


def test_pooled_r_precision_is_at_chance_for_unrelated_motions():
    rng = np.random.default_rng(1)
    n, d, bs = 4000, 16, 32
    text, motion, pool = rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(500, d))
    drawn = M.draw_distractors([f"q{i}" for i in range(n)], [f"p{i}" for i in range(500)], bs - 1, rng)
    r1 = M.r_precision_pooled(text, motion, pool, drawn, top_k=1)[0]
    assert abs(r1 - 1 / bs) < 0.01


def test_scoring_row_with_a_stream_pool_sees_cross_scenario_confusion():
    """Two scenarios, one phrase: scenario A's motions answer B's caption.  The subset pool
    cannot see it (every distractor is an A caption); the stream pool can."""
    rng = np.random.default_rng(2)
    n, d = 64, 8
    a_text = 10.0 * rng.normal(size=(n, d))
    b_text = a_text + 3.0 * np.eye(d)[0]    # B's captions: the same phrases, another scenario cue
    motion = b_text + 0.05 * rng.normal(size=(n, d))     # A's prompts answered with B's actions
    kw = dict(ref_stats=(np.zeros(d), np.eye(d)), pred_emotions=np.zeros(n, int),
              true_emotions=np.zeros(n, int), repeats=3, batch_size=32)
    subset = score_embeddings(a_text, motion, **kw)
    texts = [f"a{i}" for i in range(n)]
    pool_texts = texts + [f"b{i}" for i in range(n)]
    stream = score_embeddings(a_text, motion, pool_emb=np.vstack([a_text, b_text]), texts=texts,
                              pool_texts=pool_texts, **kw)
    assert subset["r_precision_pool"] == "subset" and stream["r_precision_pool"] == "stream"
    assert subset["r_precision_top1"] > 0.9          # within A, each motion is still nearest its own
    # it loses exactly when its B counterpart is among the 31 distractors drawn from the 127
    # other captions: R@1 = 1 - 31/127 = 0.756 in expectation (192 draws: sd 0.03)
    assert abs(stream["r_precision_top1"] - (1 - 31 / 127)) < 0.1
    assert stream["chance_top1"] == subset["chance_top1"] == 1 / 32
    with pytest.raises(ValueError, match="pool_texts"):
        score_embeddings(a_text, motion, pool_emb=a_text, **kw)


def test_pool_option_validated_and_hashed_only_when_not_the_reference():
    with pytest.raises(DataError, match="--rp-pool"):
        EvalSettings(pool="everything")
    from harness.run_config import RunConfig

    base = RunConfig.from_options(method="seq_lora", preset="tiny", out="runs/x")
    assert base.eval.pool == "subset" and "r_precision_pool" not in base.hashed()
    pooled = base.replace(r_precision_pool="stream")
    assert pooled.eval.pool == "stream" and pooled.hashed()["r_precision_pool"] == "stream"
    # the default preset scores on the stream pool (results/conflict-pilot, amendment 2)
    default = RunConfig.from_options(method="seq_lora", preset="default", out="runs/x")
    assert default.eval.pool == "stream"
