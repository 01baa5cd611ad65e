"""print_window_mask.py: prints, as a C initializer, which keys each query
may see under transformers' sliding-window causal mask (Mistral's eager
path, create_sliding_window_causal_mask) for window 4 and the padding mask
of tests/test_attention_window.c (mask9), 1 where the key is kept. The
output is pasted into that test (hf_allowed9), which checks ag_attention's
window rule against it without Python.

    pip install torch transformers
    python3 tools/ref/print_window_mask.py
"""
import torch
from transformers import MistralConfig
from transformers.masking_utils import create_sliding_window_causal_mask

WINDOW, B, T = 4, 2, 9
MASK9 = [[0, 0, 1, 1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0, 1, 1, 1]]

cfg = MistralConfig(sliding_window=WINDOW, hidden_size=8, num_attention_heads=2,
                    num_key_value_heads=1)
cfg._attn_implementation = "eager"
m = create_sliding_window_causal_mask(config=cfg, inputs_embeds=torch.zeros(B, T, 8),
                                      attention_mask=torch.tensor(MASK9), cache=None,
                                      past_key_values=None)
allowed = (m == 0) if m.dtype != torch.bool else m  # eager: 0 kept, -inf masked
allowed = allowed.expand(B, 1, T, T)[:, 0].int()
print("/* transformers %s, window %d */" % (__import__("transformers").__version__, WINDOW))
print("static const int hf_allowed9[2][9][9] = {")
for b in range(B):
    print("\t{")
    for i in range(T):
        print("\t\t{ " + ", ".join(str(int(x)) for x in allowed[b, i]) + " },")
    print("\t},")
print("};")
