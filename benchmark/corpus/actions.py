"""Per-scenario action repertoires: each action is a periodic joint-angle pattern plus the verb
phrases that describe it.

An action function fills a :class:`~benchmark.corpus.pose.Pose` from the cycle phase ``ph``
((T,) rad, already warped by the emotion), the amplitude ``a`` (1 = nominal) and the cycle
frequency ``f`` (Hz, for speeds).  One-handed actions use the right side; mirroring the finished
motion gives the left-handed take (captions say ``{side}``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from benchmark.corpus.pose import Pose, exp
from benchmark.corpus.texts import register_verbs

sin, cos = np.sin, np.cos


def relu(x):
    return np.maximum(x, 0.0)


def ramp(ph):
    """0 -> 1 -> 0 over each cycle (raised cosine)."""
    return 0.5 - 0.5 * cos(ph)


@dataclass(frozen=True)
class Action:
    name: str
    scenario: str
    freq: float                                        # nominal cycles per second
    fn: Callable[[Pose, np.ndarray, float, float], None]
    phrases: tuple[str, ...]                            # third-person verb phrases


def _gait(p: Pose, ph, a, hip=0.4, knee=0.55, arm=0.3, elbow=0.25):
    p.add("l_hip_flex", hip * a * sin(ph)).add("r_hip_flex", -hip * a * sin(ph))
    p.add("l_knee", 0.1 + knee * a * relu(cos(ph))).add("r_knee", 0.1 + knee * a * relu(-cos(ph)))
    p.add("l_arm_raise", -arm * a * sin(ph)).add("r_arm_raise", arm * a * sin(ph)).add("elbow", elbow)


# ----------------------------------------------------------------------------- Daily Life
def walk(p, ph, a, f):
    _gait(p, ph, a)
    p.fwd += 1.4 * a * f


def sit(p, ph, a, f):
    w = ramp(ph) * min(a, 1.3)
    p.add("hip_flex", 1.4 * w).add("knee", 1.5 * w).add("ankle", -0.3 * w)
    p.add("spine_pitch", 0.2 * w + 0.35 * sin(ph) ** 2).add("arm_raise", 0.35 * w).add("elbow", 0.4 * w)


def wave(p, ph, a, f):
    p.add("r_arm_abduct", 1.3 + 0.15 * a * sin(ph)).add("r_arm_raise", 0.4)
    p.add("r_elbow", 1.0 + 0.45 * a * sin(ph)).add("neck_pitch", -0.1)


def pick_up(p, ph, a, f):
    w = ramp(ph) * min(a, 1.3)
    p.add("spine_pitch", 1.0 * w).add("hip_flex", 0.6 * w).add("knee", 0.8 * w)
    p.add("r_arm_raise", 0.5 * w).add("r_elbow", 0.3 * w).add("neck_pitch", 0.3 * w)


# ----------------------------------------------------------------------------- Sports
def jog(p, ph, a, f):
    _gait(p, ph, a, hip=0.5, knee=0.95, arm=0.45, elbow=1.4)
    p.add("spine_pitch", 0.12)
    p.hop += 0.06 * a * relu(sin(2 * ph))
    p.fwd += 1.7 * a * f


def kick(p, ph, a, f):
    s = sin(ph)
    p.add("r_hip_flex", a * (1.3 * relu(s) - 0.4 * relu(-s))).add("r_knee", 0.15 + 1.1 * a * relu(-s))
    p.add("l_knee", 0.15).add("l_arm_raise", 0.6 * relu(s)).add("r_arm_abduct", 0.5)
    p.add("spine_pitch", -0.2 * relu(s) * a)


def throw(p, ph, a, f):
    s = sin(ph)
    p.add("r_arm_raise", 1.3 + 1.0 * a * s).add("r_arm_abduct", 0.4).add("r_elbow", 0.9 - 0.6 * relu(-s))
    p.add("spine_yaw", 0.5 * a * s).add("spine_pitch", 0.3 * relu(-s)).add("l_arm_raise", 0.8 * relu(s))
    p.add("l_hip_flex", 0.3).add("l_knee", 0.2)


def swing(p, ph, a, f):
    s = sin(ph)
    p.add("arm_raise", 0.9).add("elbow", 0.3).add("l_arm_abduct", 0.8 * a * s).add("r_arm_abduct", -0.8 * a * s)
    p.add("spine_yaw", 0.8 * a * s).add("spine_pitch", 0.3).add("knee", 0.3).add("hip_abduct", 0.15)


# ----------------------------------------------------------------------------- Dance
def spin(p, ph, a, f):
    p.add("arm_abduct", 1.1 + 0.2 * sin(2 * ph)).add("elbow", 0.3).add("neck_pitch", -0.1)
    p.turn += 2 * np.pi * f * min(a, 1.3)
    p.hop += 0.02 * ramp(2 * ph)


def sway(p, ph, a, f):
    p.add("spine_roll", 0.3 * a * sin(ph)).add("root_roll", 0.08 * a * sin(ph))
    p.add("arm_abduct", 0.6 + 0.4 * a * sin(ph)).add("knee", 0.15 + 0.15 * relu(cos(ph)))
    p.side += 0.3 * a * cos(ph)


def step(p, ph, a, f):
    s = sin(ph)
    p.add("l_hip_abduct", 0.3 * a * relu(s)).add("r_hip_abduct", 0.3 * a * relu(-s))
    p.add("knee", 0.2 + 0.2 * ramp(2 * ph)).add("arm_raise", 0.6 + 0.4 * sin(2 * ph)).add("elbow", 1.2)
    p.side += 0.5 * a * s
    p.hop += 0.03 * relu(sin(2 * ph))


# ----------------------------------------------------------------------------- Shows
def bow(p, ph, a, f):
    w = ramp(ph) * min(a, 1.3)
    p.add("spine_pitch", 1.0 * w).add("root_pitch", 0.2 * w).add("neck_pitch", 0.3 * w)
    p.add("r_arm_raise", 0.4 * w).add("r_elbow", 1.5 * w).add("l_arm_raise", -0.25 * w)


def clap(p, ph, a, f):
    p.add("arm_raise", 1.1).add("elbow", 0.8).add("arm_abduct", -0.15 + 0.35 * a * ramp(ph))


def present(p, ph, a, f):
    w = ramp(ph) * a
    p.add("arm_raise", 0.8 + 0.3 * w).add("arm_abduct", 0.3 + 0.9 * w).add("elbow", 0.6 * (1 - w / max(a, 1e-6)))
    p.add("spine_yaw", 0.3 * sin(ph)).add("spine_pitch", -0.1 * w)


# ----------------------------------------------------------------------------- Game
def _guard(p):
    p.add("elbow", 1.8).add("arm_raise", 0.9).add("knee", 0.3).add("hip_abduct", 0.12).add("spine_pitch", 0.15)


def punch(p, ph, a, f):
    _guard(p)
    r, l = relu(sin(ph)) ** 2 * a, relu(-sin(ph)) ** 2 * a
    p.add("r_elbow", -1.6 * r).add("r_arm_raise", 0.5 * r).add("l_elbow", -1.6 * l).add("l_arm_raise", 0.5 * l)
    p.add("spine_yaw", 0.4 * (l - r))


def dodge(p, ph, a, f):
    _guard(p)
    d = relu(sin(ph)) * a
    p.add("knee", 0.6 * d).add("hip_flex", 0.5 * d).add("spine_pitch", 0.4 * d).add("spine_roll", 0.5 * a * cos(ph))
    p.side += 0.6 * a * cos(ph)


def crouch(p, ph, a, f):
    w = ramp(ph) * min(a, 1.3)
    p.add("knee", 0.3 + 1.6 * w).add("hip_flex", 0.2 + 1.3 * w).add("spine_pitch", 0.2 + 0.4 * w)
    p.add("arm_raise", 0.4 * w).add("ankle", -0.5 * w)
    p.fwd += 0.15 * a


# ----------------------------------------------------------------------------- Animation
def cartoon_hop(p, ph, a, f):
    s = sin(ph)
    p.hop += 0.25 * a * relu(s)
    p.add("knee", 0.2 + 0.8 * relu(-s)).add("hip_flex", 0.2 + 0.6 * relu(-s)).add("arm_abduct", 0.4 + 0.9 * relu(s))
    p.fwd += 0.6 * a


def stride(p, ph, a, f):
    _gait(p, ph, a, hip=0.8, knee=0.9, arm=0.9, elbow=0.2)
    p.add("spine_yaw", 0.25 * sin(ph)).add("neck_pitch", 0.1 * sin(2 * ph))
    p.hop += 0.05 * relu(sin(2 * ph))
    p.fwd += 2.2 * a * f


def sneak(p, ph, a, f):
    p.add("spine_pitch", 0.35).add("arm_raise", 0.6).add("elbow", 1.5).add("ankle", -0.4)
    p.add("l_hip_flex", 0.3 + 0.4 * a * sin(ph)).add("r_hip_flex", 0.3 - 0.4 * a * sin(ph))
    p.add("l_knee", 0.5 + 0.4 * relu(cos(ph))).add("r_knee", 0.5 + 0.4 * relu(-cos(ph)))
    p.fwd += 0.8 * a * f


# ----------------------------------------------------------------------------- Instrument Play
def drum(p, ph, a, f):
    p.add("l_arm_raise", 0.7 + 0.3 * a * sin(ph)).add("r_arm_raise", 0.7 - 0.3 * a * sin(ph))
    p.add("l_elbow", 1.2 + 0.5 * a * sin(ph)).add("r_elbow", 1.2 - 0.5 * a * sin(ph))
    p.add("spine_pitch", 0.15).add("knee", 0.1).add("neck_pitch", 0.1 * sin(ph))


def strum(p, ph, a, f):
    p.add("l_arm_raise", 0.6).add("l_arm_abduct", 0.5).add("l_elbow", 1.6)
    p.add("r_arm_raise", 0.5).add("r_arm_abduct", -0.4).add("r_elbow", 1.2 + 0.35 * a * sin(ph))
    p.add("spine_pitch", 0.1).add("neck_pitch", 0.25 + 0.05 * sin(ph))


def fiddle(p, ph, a, f):
    p.add("l_arm_raise", 1.3).add("l_arm_abduct", 0.5).add("l_elbow", 1.7)
    p.add("neck_pitch", 0.3).add("head_yaw", 0.3).add("spine_roll", 0.1 + 0.05 * sin(ph))
    p.add("r_arm_raise", 0.9).add("r_arm_abduct", 0.3 + 0.5 * a * sin(ph)).add("r_elbow", 0.9 - 0.6 * a * sin(ph))


# ----------------------------------------------------------------------------- Acrobatics
def cartwheel(p, ph, a, f):
    p.add("root_roll", ph - ph[0]).add("arm_abduct", 2.8).add("hip_abduct", 0.6 * min(a, 1.3))
    p.side += 1.6 * f * min(a, 1.3)


def flip(p, ph, a, f):
    u = np.mod(ph, 2 * np.pi) / (2 * np.pi)
    s = np.clip((u - 0.3) / 0.5, 0.0, 1.0)
    p.add("root_pitch", -2 * np.pi * s * s * (3 - 2 * s))
    p.hop += 4 * 0.5 * min(a, 1.3) * s * (1 - s)
    crouch_w = exp(-((u - 0.2) / 0.08) ** 2) + exp(-((u - 0.9) / 0.08) ** 2)
    tuck = np.sin(np.pi * s)
    p.add("knee", 1.1 * crouch_w + 1.6 * tuck).add("hip_flex", 0.7 * crouch_w + 1.5 * tuck)
    p.add("arm_raise", 2.6 * exp(-((u - 0.3) / 0.1) ** 2) + 0.8 * tuck)


def handstand(p, ph, a, f):
    v = np.clip(1.6 * ramp(ph), 0.0, 1.0)
    p.add("root_pitch", np.pi * v).add("arm_raise", 2.9 * v).add("spine_pitch", -0.2 * v)
    p.add("l_hip_flex", 0.6 * np.sin(np.pi * v)).add("hip_abduct", 0.1 * v * (1 + sin(3 * ph)) * a)


_ACTIONS = [
    Action("walk", "Daily Life", 0.9, walk, ("walks forward", "strolls ahead", "takes a walk",
                                             "walks across the room")),
    Action("sit", "Daily Life", 0.25, sit, ("sits down and stands up", "sits down on a chair",
                                            "lowers themselves to sit and rises again")),
    Action("wave", "Daily Life", 1.3, wave, ("waves with the {side} hand", "waves hello",
                                             "raises the {side} hand and waves")),
    Action("pick_up", "Daily Life", 0.3, pick_up, ("picks something up from the floor",
                                                   "bends down to pick up an object",
                                                   "reaches down and picks up a box")),
    Action("jog", "Sports", 1.4, jog, ("jogs forward", "runs at a steady pace", "jogs ahead")),
    Action("kick", "Sports", 0.6, kick, ("kicks a ball with the {side} leg", "kicks forward",
                                         "swings the {side} leg to kick")),
    Action("throw", "Sports", 0.5, throw, ("throws a ball with the {side} hand",
                                           "winds up and throws something", "pitches a ball")),
    Action("swing", "Sports", 0.45, swing, ("swings a bat", "swings a golf club",
                                            "twists and swings with both arms")),
    Action("spin", "Dance", 0.5, spin, ("spins around with open arms", "twirls in a circle",
                                        "pirouettes in place")),
    Action("sway", "Dance", 0.5, sway, ("sways from side to side", "dances and sways the hips",
                                        "sways to the music with raised arms")),
    Action("step", "Dance", 0.8, step, ("does a side step dance", "dances with quick steps",
                                        "steps side to side to the beat")),
    Action("bow", "Shows", 0.3, bow, ("bows to the audience", "takes a bow on stage",
                                      "bends forward in a deep bow")),
    Action("clap", "Shows", 1.5, clap, ("claps the hands", "applauds on stage",
                                        "claps in front of the chest")),
    Action("present", "Shows", 0.35, present, ("presents with open arms", "gestures grandly to "
                                               "the audience", "spreads the arms to present")),
    Action("punch", "Game", 1.0, punch, ("throws punches", "punches with both fists",
                                         "boxes with quick jabs")),
    Action("dodge", "Game", 0.6, dodge, ("dodges and weaves", "ducks to dodge an attack",
                                         "evades from side to side")),
    Action("crouch", "Game", 0.35, crouch, ("crouches down and rises", "squats low to hide",
                                            "crouches and creeps forward")),
    Action("cartoon_hop", "Animation", 1.1, cartoon_hop, ("hops forward like a cartoon",
                                                          "bounces along in big hops",
                                                          "jumps around like an animated character")),
    Action("stride", "Animation", 0.6, stride, ("walks with exaggerated strides",
                                                "marches with big cartoonish steps",
                                                "strides forward swinging the arms wide")),
    Action("sneak", "Animation", 0.5, sneak, ("tiptoes forward sneakily", "sneaks on tiptoes",
                                              "creeps forward like a cartoon thief")),
    Action("drum", "Instrument Play", 2.0, drum, ("plays the drums", "beats a drum with sticks",
                                                  "drums with both hands")),
    Action("strum", "Instrument Play", 1.8, strum, ("strums a guitar", "plays the guitar",
                                                    "strums the strings of a guitar")),
    Action("fiddle", "Instrument Play", 0.7, fiddle, ("plays the violin", "bows a violin",
                                                      "draws the bow across a violin")),
    Action("cartwheel", "Acrobatics", 0.4, cartwheel, ("does a cartwheel", "turns cartwheels",
                                                       "cartwheels sideways")),
    Action("flip", "Acrobatics", 0.35, flip, ("does a backflip", "flips backwards",
                                              "jumps and flips in the air")),
    Action("handstand", "Acrobatics", 0.2, handstand, ("does a handstand",
                                                       "kicks up into a handstand",
                                                       "balances on the hands upside down")),
]
ACTIONS: dict[str, Action] = {a.name: a for a in _ACTIONS}
SCENARIO_ACTIONS: dict[str, tuple[str, ...]] = {}
for _a in _ACTIONS:
    SCENARIO_ACTIONS.setdefault(_a.scenario, ())
    SCENARIO_ACTIONS[_a.scenario] += (_a.name,)
    register_verbs(_a.phrases)
