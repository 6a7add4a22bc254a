"""A second example: a CL plugin and the routing hook (``l2emg run --method word_router
--strategy-file examples/routed_method.py --out runs/wr``).  Word-Router: one LoRA per
scenario (the earlier ones frozen), a replay memory from the composable CL plugins, and at
generation every prompt is sent to the adapter of the scenario whose training prompts share
the most words with it."""
from dataclasses import dataclass, field

from benchmark.strategy import MotionLMStrategy, Route, StrategyConfig, lora, register_strategy
from benchmark.strategy.plugins import ReplayPlugin


@dataclass
class WordRouterConfig(StrategyConfig):
    mem_size: int = field(default=64, metadata={"help": "replay memory (items)"})


@register_strategy("word_router", config=WordRouterConfig)
class WordRouter(MotionLMStrategy):
    """One LoRA per scenario + replay; prompts routed to a scenario by shared words."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.use_plugin(ReplayPlugin(mem_size=self.config.mem_size, replay_batch_size=4, seed=self.seed))
        self.keep("words", [])            # per scenario: the words of its training prompts

    def before_experience(self, experience):
        names = list(self.motion_lm.adapters)
        self.add_lora(self.adapter_name(), copy_tokens_from=names[-1] if names else None)

    def after_experience(self, experience):
        lora.freeze_adapter(self.motion_lm, self.adapter_name())
        texts = [experience.dataset[i]["text"] for i in range(len(experience.dataset))]
        self.words.append(sorted({w for t in texts for w in t.lower().split()}))

    def route(self, batch):
        if not self.words:
            return None                   # before any training: the backbone as it is
        sets = [set(w) for w in self.words]
        best = [max(range(len(sets)), key=lambda k: len(sets[k] & set(t.lower().split())))
                for t in batch["texts"]]
        return Route(adapters=[self.adapter_name(k) for k in best])
