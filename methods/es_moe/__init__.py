"""ES-MoE (CGED + scenario-adapted LoRA experts) and its three Table 2 ablations."""
from methods.es_moe.strategy import (ESMoE, ESMoEConfig, ESMoENoCGED, ESMoENoEmoLoss,  # noqa: F401
                                     ESMoENoSAMoE)
