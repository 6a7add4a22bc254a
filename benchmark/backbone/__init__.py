"""The motion LLM backbone: any Hugging Face causal LM with motion tokens (:class:`MotionLM`)
and the default offline ``tiny`` LLaMA (:func:`build_tiny_backbone`)."""
from benchmark.backbone.motion_lm import (GenerationSettings, MotionLM, MotionLMConfig,
                                          MotionTokenConstraint, motion_vocab)
from benchmark.backbone.tiny import (INSTRUCTION, TinyBackboneConfig, build_tiny_backbone,
                                     train_text_tokenizer)

__all__ = ["MotionLM", "MotionLMConfig", "GenerationSettings", "MotionTokenConstraint",
           "motion_vocab", "INSTRUCTION", "TinyBackboneConfig", "build_tiny_backbone",
           "train_text_tokenizer"]
