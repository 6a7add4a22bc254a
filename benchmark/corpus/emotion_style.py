"""Emotion as a shared, cross-scenario style factor on posture and dynamics.

The same :class:`EmotionStyle` is applied to every action of every scenario, so what a model
learns about "sad" (lowered head, slumped spine, small slow movement) in one scenario transfers
to another, while the action itself carries the scenario.

Optionally (``SynthConfig.scenario_style`` > 0) each scenario also expresses each emotion in a
way of its own: a :class:`ScenarioShift` (a fixed change of tempo, size and posture per scenario
x emotion, :func:`scenario_shift`) is added on top of the shared style.  The shifts of one
emotion in two scenarios are independent draws, so what a model learns about "happy" in one
scenario is partly wrong in another: sequential training on a shared adapter then has something
to forget, while a model that reads the action (which names the scenario) can learn them all.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from benchmark.corpus.pose import Pose, exp


@dataclass(frozen=True)
class EmotionStyle:
    """tempo/amplitude: multipliers of the action's frequency and size; sharpness in [0, 0.8):
    phase warp making strokes fast and holds long; bounce: vertical bob (m) at twice the action
    rate; tremor: ~9 Hz shaking (rad); startle: size of a sudden recoil (surprise);
    posture: constant offsets (rad) of named degrees of freedom (see ``pose.DOFS``)."""

    tempo: float = 1.0
    amplitude: float = 1.0
    sharpness: float = 0.0
    bounce: float = 0.0
    tremor: float = 0.0
    startle: float = 0.0
    posture: dict[str, float] = field(default_factory=dict)


EMOTION_STYLES: dict[str, EmotionStyle] = {
    "neutral": EmotionStyle(),
    "happy": EmotionStyle(tempo=1.25, amplitude=1.3, bounce=0.05, posture={
        "spine_pitch": -0.12, "neck_pitch": -0.25, "arm_abduct": 0.18, "collar_raise": 0.05}),
    "sad": EmotionStyle(tempo=0.65, amplitude=0.55, posture={
        "spine_pitch": 0.45, "neck_pitch": 0.6, "collar_fwd": 0.3, "collar_raise": -0.12,
        "knee": 0.08, "arm_abduct": -0.06}),
    "angry": EmotionStyle(tempo=1.35, amplitude=1.25, sharpness=0.6, posture={
        "root_pitch": 0.12, "spine_pitch": 0.15, "neck_pitch": -0.1, "elbow": 0.6,
        "arm_abduct": 0.22, "hip_abduct": 0.08, "collar_raise": 0.1}),
    "fearful": EmotionStyle(tempo=1.15, amplitude=0.6, tremor=0.05, posture={
        "root_pitch": -0.14, "spine_pitch": 0.2, "neck_pitch": 0.15, "collar_raise": 0.25,
        "elbow": 0.9, "arm_raise": 0.3, "arm_abduct": -0.08, "knee": 0.25, "hip_flex": 0.12}),
    "surprised": EmotionStyle(tempo=1.0, amplitude=1.05, startle=1.0, posture={
        "spine_pitch": -0.15, "neck_pitch": -0.25, "arm_raise": 0.25, "elbow": 0.35,
        "arm_abduct": 0.12}),
    "disgusted": EmotionStyle(tempo=0.85, amplitude=0.75, posture={
        "head_yaw": 0.5, "spine_yaw": 0.25, "spine_roll": -0.1, "spine_pitch": -0.08,
        "neck_pitch": -0.1, "l_arm_raise": 0.7, "l_elbow": 1.2, "l_arm_abduct": 0.15}),
}


def warp_phase(phase: np.ndarray, sharpness: float) -> np.ndarray:
    """Monotone phase warp: ``sharpness`` > 0 concentrates each cycle's motion into a short stroke."""
    return phase - sharpness * np.sin(phase)


def apply_emotion(pose: Pose, style: EmotionStyle, t: np.ndarray, phase: np.ndarray,
                  rng: np.random.Generator) -> Pose:
    """Add the emotion's posture, bounce, tremor and startle to ``pose`` (in place).

    t: (T,) seconds; phase: (T,) rad of the action cycle.  Offsets vary +-20 % per sample.
    """
    for dof, value in style.posture.items():
        pose.add(dof, value * rng.uniform(0.8, 1.2))
    if style.bounce:
        pose.hop += style.bounce * rng.uniform(0.8, 1.2) * 0.5 * (1 - np.cos(2 * phase))
    if style.tremor:
        f = rng.uniform(7.0, 10.0)
        shake = np.sin(2 * np.pi * f * t[:, None] + rng.uniform(0, 2 * np.pi, size=6))
        for k, dof in enumerate(("spine_roll", "neck_pitch", "l_arm_abduct", "r_arm_abduct",
                                 "l_elbow", "r_elbow")):
            pose.add(dof, style.tremor * shake[:, k])
    if style.startle:
        t0 = rng.uniform(0.15, 0.5) * t[-1]
        dt = t - t0
        env = style.startle / (1 + exp(-dt / 0.04)) * exp(-np.maximum(dt, 0) / 1.2)
        for dof, value in (("spine_pitch", -0.35), ("neck_pitch", -0.3), ("arm_raise", 1.1),
                           ("arm_abduct", 0.5), ("elbow", 0.6), ("knee", 0.25),
                           ("hip_flex", 0.15)):
            pose.add(dof, value * env)
        pose.hop += 0.04 * env
    return pose


# degrees of freedom a scenario's own expression of an emotion moves (the shared style's tremor,
# bounce, startle and phase warp are left alone, so the shared part stays readable), and the
# std of the shifts at strength 1: posture offsets ~ N(0, 0.3 rad), tempo and amplitude factors
# exp(N(0, 0.2))
SHIFT_DOFS = ("arm_raise", "arm_abduct", "elbow", "spine_pitch", "spine_yaw", "spine_roll",
              "neck_pitch", "head_yaw", "knee", "hip_flex")
SHIFT_POSTURE_STD = 0.3
SHIFT_DYNAMICS_STD = 0.2


@dataclass(frozen=True)
class ScenarioShift:
    """A scenario's own change of one emotion's style: factors on the motion's tempo and size
    and constant posture offsets (rad).  The identity shift changes nothing, bit for bit."""

    tempo: float = 1.0
    amplitude: float = 1.0
    posture: dict[str, float] = field(default_factory=dict)

    def apply(self, pose: Pose) -> Pose:
        """Add the posture offsets to ``pose`` (in place); tempo and amplitude are applied by
        the generator where it sets the action's frequency and size."""
        for dof, value in self.posture.items():
            pose.add(dof, value)
        return pose


IDENTITY_SHIFT = ScenarioShift()


def scenario_shift(scenario: str, emotion: str, strength: float, seed: int = 0) -> ScenarioShift:
    """The fixed shift of ``emotion`` in ``scenario`` at ``strength`` (0 = none).

    Deterministic in (scenario, emotion, seed) and independent of the order motions are made in;
    ``strength`` scales one draw, so two strengths shift in the same direction.  "neutral" is
    never shifted (no emotion to express)."""
    if strength < 0:
        raise ValueError(f"scenario_style must be >= 0, got {strength}")
    if strength == 0 or emotion == "neutral":
        return IDENTITY_SHIFT
    key = [int(seed), 0x5CE4A, zlib.crc32(scenario.encode()), zlib.crc32(emotion.encode())]
    rng = np.random.default_rng(np.random.SeedSequence(key))
    tempo, amplitude = exp(strength * SHIFT_DYNAMICS_STD * rng.standard_normal(2))
    offsets = strength * SHIFT_POSTURE_STD * rng.standard_normal(len(SHIFT_DOFS))
    return ScenarioShift(float(tempo), float(amplitude),
                         {d: float(v) for d, v in zip(SHIFT_DOFS, offsets)})
