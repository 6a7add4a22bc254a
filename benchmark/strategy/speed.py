"""Speed levers of the training step and of generation (``StrategyConfig`` options, all off by
default; a config that leaves them off keeps its hash and its numbers).

* :class:`LengthBucketSampler` (``length_bucketing``): batches of similar token length, so less
  padding; every item exactly once per epoch, seeded by the loader's generator.
* :class:`LossPositionsHead` (``loss_logits_only``): while installed, a forward that gets
  ``labels`` runs the LM head and the cross-entropy only at the positions whose next token
  carries a label (HF's own ``ForCausalLMLoss`` with ``shift_labels``), for every method that
  calls the model with labels (its forward, ``inputs_embeds`` or prepended prompts included).
* :func:`compile_layers` (``compile``): ``torch.compile`` of each decoder layer in place
  (parameter names and checkpoints unchanged); a layer that fails to compile runs eagerly.
* :func:`merged_lora` (``merge_for_generation``): the active LoRA adapters folded into copies of
  the base weights while sampling, the original weight tensors put back afterwards (bit for bit).
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler


# ----------------------------------------------------------------------------- length bucketing
def bucket_batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator,
                   pool_batches: int = 50) -> list[list[int]]:
    """One epoch of batches: a seeded permutation of the items is cut into pools of
    ``pool_batches`` x ``batch_size``, each pool is sorted by length (stable) and cut into
    batches, and the batch order is shuffled.  Every index appears exactly once; the number of
    batches is ``ceil(n / batch_size)``, as for a plain shuffled loader (only the last pool can
    end in a short batch)."""
    n = len(lengths)
    if batch_size < 1 or pool_batches < 1:
        raise ValueError("batch_size and pool_batches must be >= 1")
    perm = torch.randperm(n, generator=generator).tolist()
    pool = batch_size * pool_batches
    batches: list[list[int]] = []
    for start in range(0, n, pool):
        chunk = sorted(perm[start: start + pool], key=lambda i: lengths[i])
        batches += [chunk[k: k + batch_size] for k in range(0, len(chunk), batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


class LengthBucketSampler(Sampler[list[int]]):
    """``batch_sampler`` of a ``DataLoader``: :func:`bucket_batches` per epoch (``lengths`` =
    the token length of each item; ``generator`` makes it resumable)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, generator: torch.Generator,
                 pool_batches: int = 50):
        self.lengths = [int(x) for x in lengths]
        self.batch_size = int(batch_size)
        self.generator = generator
        self.pool_batches = int(pool_batches)

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        yield from bucket_batches(self.lengths, self.batch_size, self.generator, self.pool_batches)


# ----------------------------------------------------------------------------- loss positions
def loss_positions(labels: torch.Tensor, ignore_index: int = -100) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) labels -> (N, 2) (row, position) of the N positions whose *next* token carries a
    label (the causal shift of a HF LM loss), and their (N,) targets, in row-major order."""
    nxt = torch.nn.functional.pad(labels, (0, 1), value=ignore_index)[:, 1:]
    where = (nxt != ignore_index).nonzero()
    return where, nxt[where[:, 0], where[:, 1]]


class LossPositionsHead:
    """Installed on a strategy's LM for one training experience: the outer model's forward
    pre-hook notes the ``labels`` of a call, the LM head's pre-hook keeps only the hidden states
    at :func:`loss_positions` (so the head computes (1, N, V) logits), and the causal LM's
    ``loss_function`` takes the matching targets as ``shift_labels``.  Calls without labels
    (generation, teacher forwards) are untouched.  :meth:`remove` undoes everything."""

    def __init__(self, outer: torch.nn.Module, causal_lm: torch.nn.Module):
        from transformers.loss.loss_utils import ForCausalLMLoss

        head = causal_lm.get_output_embeddings()
        if head is None:
            raise ValueError(f"{type(causal_lm).__name__} has no output embeddings (LM head)")
        self._default_loss = ForCausalLMLoss
        self._labels: torch.Tensor | None = None
        self._targets: torch.Tensor | None = None
        self.causal_lm = causal_lm
        self._had_loss = "_loss_function" in vars(causal_lm)
        self._old_loss = vars(causal_lm).get("_loss_function")
        causal_lm.loss_function = self._loss
        self._hooks = [
            outer.register_forward_pre_hook(self._note_labels, with_kwargs=True),
            outer.register_forward_hook(self._clear, always_call=True),
            head.register_forward_pre_hook(self._select)]

    def _note_labels(self, module, args, kwargs):
        labels = kwargs.get("labels")
        self._labels = labels if torch.is_tensor(labels) else None
        self._targets = None

    def _clear(self, module, args, output):
        self._labels = self._targets = None

    def _select(self, module, args):
        if self._labels is None:
            return None
        hidden = args[0]
        if hidden.shape[:2] != self._labels.shape:
            raise ValueError(f"loss_logits_only: hidden states {tuple(hidden.shape[:2])} do not "
                             f"match the labels {tuple(self._labels.shape)}")
        where, self._targets = loss_positions(self._labels.to(hidden.device))
        return (hidden[where[:, 0], where[:, 1]].unsqueeze(0), *args[1:])

    def _loss(self, logits, labels, vocab_size, **kwargs):
        if self._targets is None:            # no labels noted: the model's usual loss
            return self._default_loss(logits, labels, vocab_size, **kwargs)
        kwargs.pop("shift_labels", None)
        return self._default_loss(logits, labels, vocab_size, shift_labels=self._targets, **kwargs)

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []
        if self._had_loss:
            self.causal_lm._loss_function = self._old_loss
        elif "_loss_function" in vars(self.causal_lm):
            del self.causal_lm._loss_function


def causal_lm_of(model: torch.nn.Module) -> torch.nn.Module:
    """The HF causal LM inside ``model`` (a peft model's base model, or ``model`` itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


# ----------------------------------------------------------------------------- torch.compile
def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks of a HF causal LM (``model.model.layers``), [] if not found."""
    inner = getattr(causal_lm_of(model), "model", None)
    layers = getattr(inner, "layers", None)
    return list(layers) if layers is not None else []


def compile_layers(model: torch.nn.Module) -> int:
    """``torch.compile`` each decoder layer of ``model`` in place (``Module.compile``: names,
    ``state_dict`` and checkpoints unchanged); a layer whose compiled code fails at run time
    falls back to eager (dynamo's ``suppress_errors``).  Returns the number compiled (0 if
    torch.compile is unavailable here)."""
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    n = 0
    for layer in decoder_layers(model):
        if getattr(layer, "_compiled_call_impl", None) is not None:
            n += 1
            continue
        try:
            layer.compile(dynamic=True)
            n += 1
        except Exception as err:  # noqa: BLE001 - compile is an optional speed-up
            warnings.warn(f"torch.compile unavailable ({type(err).__name__}: {err}); running eagerly")
            break
    return n


def uncompile_layers(model: torch.nn.Module) -> None:
    for layer in decoder_layers(model):
        if getattr(layer, "_compiled_call_impl", None) is not None:
            layer._compiled_call_impl = None


# ----------------------------------------------------------------------------- merged LoRA
@contextlib.contextmanager
def merged_lora(model: torch.nn.Module):
    """Inside: every peft LoRA layer of ``model`` with active adapters computes
    ``(W + sum_a scaling_a B_a A_a) x`` with one matrix product (a merged *copy* of ``W``);
    after: the original weight tensors are back, bit for bit.  Layers with a LoRA variant
    (DoRA...) or a non-Linear base are left as they are.  Yields the number of merged layers."""
    from peft.tuners.lora import LoraLayer

    saved = []
    try:
        with torch.no_grad():
            for mod in model.modules():
                if not isinstance(mod, LoraLayer) or mod.disable_adapters or mod.merged:
                    continue
                base = mod.get_base_layer()
                names = [a for a in mod.active_adapters if a in mod.lora_A]
                if not names or not isinstance(base, torch.nn.Linear) or any(
                        a in getattr(mod, "lora_variant", {}) for a in names):
                    continue
                weight = base.weight
                merged = weight.detach().clone()
                for a in names:
                    merged += mod.get_delta_weight(a).to(merged.dtype)
                saved.append((mod, base, weight))
                base.weight = torch.nn.Parameter(merged, requires_grad=False)
                mod.merged_adapters = list(names)
        yield len(saved)
    finally:
        for mod, base, weight in saved:
            base.weight = weight
            mod.merged_adapters = []
