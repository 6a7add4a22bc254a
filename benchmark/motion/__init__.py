"""HumanML3D motion representation: 263-dim features over the 22-joint SMPL skeleton, 20 fps.

>>> from benchmark.motion import features_to_joints, joints_to_features
"""
from .features import (FEATURE_DIM, FEATURE_SLICES, FPS, FeatureConfig, canonicalize,
                       features_to_joints, joints_to_features, recover_root)
from .normalization import denormalize, normalize
from .skeleton import (DEFAULT_OFFSETS, KINEMATIC_CHAIN, N_JOINTS, PARENTS, RAW_OFFSETS,
                       bone_lengths, forward_kinematics, inverse_kinematics, offsets_from_joints,
                       retarget)

__all__ = [
    "FEATURE_DIM", "FEATURE_SLICES", "FPS", "N_JOINTS", "FeatureConfig", "features_to_joints",
    "joints_to_features", "canonicalize", "recover_root", "normalize", "denormalize",
    "KINEMATIC_CHAIN", "PARENTS", "RAW_OFFSETS", "DEFAULT_OFFSETS", "bone_lengths",
    "offsets_from_joints", "forward_kinematics", "inverse_kinematics", "retarget",
]
