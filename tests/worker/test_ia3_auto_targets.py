"""IA3 with automatic targets on an architecture PEFT has no IA3 defaults for (Phi-3's fused qkv_proj)."""

import torch
from transformers import Phi3Config, Phi3ForCausalLM

from studio.core.config import RunConfig
from studio.worker.methods import runtime_for


def test_ia3_auto_targets_on_phi3_train_only_its_vectors():
    torch.manual_seed(0)
    model = Phi3ForCausalLM(Phi3Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=4, pad_token_id=0))
    cfg = RunConfig.from_dict({"method": {"name": "ia3"}})
    wrapped = runtime_for(cfg).wrap(model)
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("ia3_l" in n for n in trainable)
    assert any("qkv_proj" in n for n in trainable) and any("down_proj" in n for n in trainable)
    x = torch.randint(0, 64, (2, 8))
    wrapped(input_ids=x, labels=x).loss.backward()
    assert all(p.grad is not None for p in wrapped.parameters() if p.requires_grad)
