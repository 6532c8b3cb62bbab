"""Soft prompts: prompt tuning, P-tuning, prefix tuning and LLaMA-Adapter (adaption prompts).

All four leave every weight untouched and learn extra vectors the model attends to. None of them
can be merged into the weights: the learned vectors are extra inputs (or per-layer keys/values),
not changes to any matrix, so they ship as an adapter that PEFT loads beside the base.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from studio.core.methods.base import MethodBase, MethodInfo, VramTerms
from studio.core.models import ModelFacts

_NOT_MERGEABLE = ("The learned vectors are extra tokens the model reads, not a change to any weight matrix, "
                  "so there is nothing to fold in: export the adapter and load it with PEFT beside the base.")

# PEFT's adaption-prompt implementation patches these attention classes only
# (peft.tuners.adaption_prompt.config.TRANSFORMERS_MODEL_CONFIG; a test keeps the two in step).
ADAPTION_PROMPT_MODEL_TYPES = frozenset({"llama", "mistral", "gpt2"})


def _kv_width(facts: ModelFacts) -> int:
    """Width of one layer's keys (or values): what a prefix adds per position and layer."""
    kv = facts.num_kv_heads or facts.num_heads
    return kv * facts.head_dim if kv and facts.head_dim else facts.hidden_size


def _mlp_tensors(h: int, e: int) -> tuple[tuple[int, int], ...]:
    """A prompt encoder MLP h -> e -> e -> h, with biases."""
    return ((h * e + e, 1), (e * e + e, 1), (e * h + h, 1))


class PromptTuningMethod(MethodBase):
    name: Literal["prompt_tuning"] = "prompt_tuning"
    num_virtual_tokens: int = Field(20, ge=1, le=512, title="Virtual tokens",
                                    description="Length of the learned soft prompt prepended to every input.")
    init: Literal["random", "text"] = Field(
        "random", title="Initialisation",
        description="Random: start from random vectors. Text: start from the embeddings of a phrase that "
                    "describes the task (usually converges faster).")
    init_text: str = Field("", title="Initial text",
                           description="The phrase used when Initialisation is Text, e.g. 'Classify the sentiment:'.")

    info = MethodInfo(
        title="Prompt tuning",
        summary="Learns a few 'virtual token' embeddings put in front of every input; the model is frozen.",
        when_to_pick="For many tasks on one big model with tiny per-task files; works best on large models "
                     "(billions of parameters) and simple tasks.",
        costs="Thousands of parameters; sequences get Virtual tokens longer. Needs a high learning rate "
              "(~1e-2 to 3e-2) and more steps than LoRA.",
        mergeable=False, merge_note=_NOT_MERGEABLE, family="Soft prompts",
    )
    recommended_lr = 3e-2
    vram_family = "prompt"

    @model_validator(mode="after")
    def _text_given(self) -> "PromptTuningMethod":
        if self.init == "text" and not self.init_text.strip():
            raise ValueError("init_text: write the phrase to start from, or choose random initialisation")
        return self

    def trainable_params(self, facts: ModelFacts) -> int:
        return self.num_virtual_tokens * facts.hidden_size

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        return VramTerms(self.vram_family, ((self.num_virtual_tokens * facts.hidden_size, 1),),
                         extra_positions=self.num_virtual_tokens)


class PTuningMethod(MethodBase):
    name: Literal["p_tuning"] = "p_tuning"
    num_virtual_tokens: int = Field(20, ge=1, le=512, title="Virtual tokens",
                                    description="Length of the learned prompt.")
    encoder_type: Literal["MLP", "LSTM"] = Field(
        "MLP", title="Prompt encoder",
        description="Network that produces the prompt embeddings from learned inputs (reparameterisation "
                    "steadies training).")
    encoder_hidden_size: int = Field(256, ge=8, le=16384, title="Encoder width",
                                     description="Hidden size of the prompt encoder.")

    info = MethodInfo(
        title="P-tuning",
        summary="Prompt tuning whose virtual tokens come out of a small trained encoder (MLP or LSTM).",
        when_to_pick="Like prompt tuning but steadier on smaller models.",
        costs="The encoder's parameters during training; only the resulting prompt matters at inference.",
        mergeable=False, merge_note=_NOT_MERGEABLE, family="Soft prompts",
    )
    recommended_lr = 1e-2
    vram_family = "prompt"

    def trainable_params(self, facts: ModelFacts) -> int:
        h, e = facts.hidden_size, self.encoder_hidden_size
        emb = self.num_virtual_tokens * h
        if self.encoder_type == "MLP":
            return emb + sum(n for n, _ in _mlp_tensors(h, e))
        lstm = 2 * (4 * e * (h + e) + 8 * e) + 2 * (4 * e * (2 * e + e) + 8 * e)
        return emb + lstm + (2 * e * 2 * e + 2 * e) + (2 * e * h + h)

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        # The embedding and the encoder, estimated as the MLP encoder whichever is chosen.
        h = facts.hidden_size
        tensors = ((self.num_virtual_tokens * h, 1),) + _mlp_tensors(h, self.encoder_hidden_size)
        return VramTerms(self.vram_family, tensors, extra_positions=self.num_virtual_tokens)


class PrefixTuningMethod(MethodBase):
    name: Literal["prefix_tuning"] = "prefix_tuning"
    num_virtual_tokens: int = Field(20, ge=1, le=512, title="Prefix length",
                                    description="Number of learned key/value positions added in every layer.")
    prefix_projection: bool = Field(False, title="Reparameterise",
                                    description="Produce the prefixes through an MLP during training "
                                                "(steadier, more parameters while training).")
    encoder_hidden_size: int = Field(256, ge=8, le=16384, title="Projection width",
                                     description="Hidden size of that MLP, when Reparameterise is on.")

    info = MethodInfo(
        title="Prefix tuning",
        summary="Learns key/value vectors prepended in every attention layer, steering all layers at once.",
        when_to_pick="More expressive than prompt tuning at the same size; for generation-style tasks.",
        costs="Layers x 2 x prefix x KV width parameters; every attention call sees Prefix length more positions.",
        mergeable=False, merge_note=_NOT_MERGEABLE, family="Soft prompts",
    )
    recommended_lr = 1e-2
    vram_family = "prompt"

    def trainable_params(self, facts: ModelFacts) -> int:
        kv = _kv_width(facts)
        width = facts.num_layers * 2 * kv
        n = self.num_virtual_tokens
        if self.prefix_projection:
            e = self.encoder_hidden_size
            return n * kv + (kv * e + e) + (e * width + width)
        return n * width

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        # Keys and values for every layer; reparameterised, an embedding (n x hidden) and an MLP
        # hidden -> e -> layers x 2 x kv produce them.
        h, n = facts.hidden_size, self.num_virtual_tokens
        width = facts.num_layers * 2 * facts.num_kv_heads * facts.head_dim
        if self.prefix_projection:
            e = self.encoder_hidden_size
            return VramTerms(self.vram_family, ((n * h, 1), (h * e + e, 1), (e * width + width, 1)))
        return VramTerms(self.vram_family, ((n * width, 1),))


class LlamaAdapterMethod(MethodBase):
    name: Literal["llama_adapter"] = "llama_adapter"
    adapter_len: int = Field(10, ge=1, le=512, title="Adapter length",
                             description="Learned prompt positions per adapted layer.")
    adapter_layers: int = Field(8, ge=1, le=512, title="Adapted layers",
                                description="How many of the top layers get an adaption prompt (all of them "
                                            "when the model has fewer).")

    info = MethodInfo(
        title="LLaMA-Adapter",
        summary="Learned adaption prompts in the top layers, mixed in through a zero-initialised gate, "
                "so training starts exactly from the base model.",
        when_to_pick="Light instruction tuning of Llama/Mistral models with a tiny adapter.",
        costs="Adapter length x hidden size per adapted layer; the gate makes early steps slow to move.",
        mergeable=False,
        merge_note="The adaption prompt is an extra gated attention branch, not a change to a weight, so it "
                   "cannot be folded in; export the adapter.",
        family="Soft prompts",
    )
    recommended_lr = 1e-2
    supported_model_types = ADAPTION_PROMPT_MODEL_TYPES
    vram_family = "prompt"

    def trainable_params(self, facts: ModelFacts) -> int:
        layers = min(self.adapter_layers, facts.num_layers or self.adapter_layers)
        return layers * (self.adapter_len * facts.hidden_size + 1)

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        # Per adapted layer the prompt (length x hidden) and its gate.
        layers = min(facts.num_layers, self.adapter_layers)
        return VramTerms(self.vram_family, ((self.adapter_len * facts.hidden_size, layers), (1, layers)))

