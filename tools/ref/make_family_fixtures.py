#!/usr/bin/env python3
"""make_family_fixtures.py: tiny random Llama, Qwen2, Qwen3 and Mistral
models and their reference forward/backward/generation, for the parity
tests of the model families after BLOOM (issue 16).

Each fixture is a *ForCausalLM from transformers with torch.manual_seed
fixed and dropout 0, every parameter randomised (RMSNorm weights
1 + 0.1 N(0,1), biases 0.1 N(0,1), other weights 0.2 N(0,1)), written to
tests/fixtures/<name>/:

  config.json, generation_config.json, model.safetensors
      model.save_pretrained(dir), float32, as transformers 5 writes them
      (RoPE settings under "rope_parameters").
  config.published.json
      the same configuration the way the published checkpoints spell it
      (Llama 3.2, Qwen2.5, Qwen3, Mistral: top-level "rope_theta" and a
      "rope_scaling" object or null), which hug must read as well.
  reference.safetensors
      input_ids, attention_mask, position_ids, labels (B, T) i32: a padded
      batch (rows "full", "right3": last 3 padded, "left2": first 2
      padded); position_ids = cumsum(attention_mask) - 1 clamped at 0 (what
      generate() uses; passed explicitly, so positions follow padding);
      labels = input_ids with -100 at padding.
      logits (B, T, V) f64, loss () f64 (transformers' causal-LM loss: logits
      at t predict labels[t + 1], mean over counted targets),
      grad.<param> f64 for every parameter (a tied lm_head's gradient is
      inside grad.model.embed_tokens.weight),
      rope.inv_freq (head_dim/2) f64: the inverse frequencies the model
      uses (transformers computes them in float32, scaling included),
      gen.<i>.prompt (1, P) i32 and gen.<i>.ids (1, P + 32) i32: greedy
      generation of 32 tokens by the stock float32 model (no EOS stop).

The references come from the model in float64 (model.double(): exactly
the float32 weights) with four patches, each printed with its effect:
  * attention softmax in the input dtype (transformers casts it to
    float32), and a query whose keys are all masked (the padded positions
    of a left-padded row) gets zero probabilities, hug's convention,
    instead of transformers' uniform average (logits there are not
    comparable; the loss term at the last padded position is);
  * RMSNorm without the float32 round trip;
  * cos/sin of RoPE computed in float64 from inv_freq (transformers
    computes position * inv_freq in float32);
  * the loss without the logits.float() cast.
(The stock float64 model is no comparison: its float32 softmax turns the
float64 mask minimum into -inf, and fully masked rows into NaN.)

Run:   python3 tools/ref/make_family_fixtures.py
Needs: pip install torch transformers safetensors
"""
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import transformers.models.llama.modeling_llama as m_llama
import transformers.models.mistral.modeling_mistral as m_mistral
import transformers.models.qwen2.modeling_qwen2 as m_qwen2
import transformers.models.qwen3.modeling_qwen3 as m_qwen3
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

from causal_lm_ref import lm_loss, padded_batch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
F64 = torch.float64
T = 9
PAD_ID = 3
GEN_NEW = 32

FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM, m_llama, "Llama"),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, m_qwen2, "Qwen2"),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM, m_qwen3, "Qwen3"),
    "mistral": (MistralConfig, MistralForCausalLM, m_mistral, "Mistral"),
}

# Odd sizes on purpose: grouped-query attention (6 over 2, multi-query 5
# over 1), head_dim not hidden/heads (Qwen3), llama3 and linear RoPE
# scaling, tied and untied embeddings, biases (Qwen2's q/k/v; Llama's
# attention_bias and mlp_bias), a sliding window shorter than T (Mistral).
FIXTURE_SPECS = [
    {"name": "llama-tiny-a", "family": "llama", "seed": 11,
     "config": dict(vocab_size=113, hidden_size=48, intermediate_size=80,
                    num_hidden_layers=2, num_attention_heads=6,
                    num_key_value_heads=2, max_position_embeddings=64,
                    rms_norm_eps=1e-5, tie_word_embeddings=False,
                    rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0,
                                     "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 16}),
     "rows": ["full", "right3", "left2"]},
    {"name": "llama-tiny-b", "family": "llama", "seed": 12,
     "config": dict(vocab_size=97, hidden_size=32, intermediate_size=56,
                    num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=4, max_position_embeddings=64,
                    rms_norm_eps=1e-6, tie_word_embeddings=True,
                    attention_bias=True, mlp_bias=True,
                    rope_parameters={"rope_type": "linear", "rope_theta": 500.0,
                                     "factor": 2.0}),
     "rows": ["full", "left2"]},
    {"name": "qwen2-tiny", "family": "qwen2", "seed": 21,
     "config": dict(vocab_size=101, hidden_size=40, intermediate_size=72,
                    num_hidden_layers=2, num_attention_heads=5,
                    num_key_value_heads=1, max_position_embeddings=64,
                    rms_norm_eps=1e-6, tie_word_embeddings=True,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
     "rows": ["full", "right3", "left2"]},
    {"name": "qwen3-tiny", "family": "qwen3", "seed": 31,
     "config": dict(vocab_size=107, hidden_size=32, intermediate_size=64,
                    num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=12,
                    max_position_embeddings=64, rms_norm_eps=1e-6,
                    tie_word_embeddings=True,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
     "rows": ["full", "right3", "left2"]},
    {"name": "mistral-tiny", "family": "mistral", "seed": 41,
     "config": dict(vocab_size=103, hidden_size=48, intermediate_size=96,
                    num_hidden_layers=2, num_attention_heads=6,
                    num_key_value_heads=2, max_position_embeddings=64,
                    rms_norm_eps=1e-5, tie_word_embeddings=False,
                    sliding_window=4,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
     "rows": ["full", "right3", "left2"]},
]


# ---- the float64 patches ----

class Mode:
    exact = False  # True while computing the float64 reference


def attention(module, query, key, value, attention_mask, scaling, dropout=0.0,
              **kwargs):
    """transformers' eager attention; in exact mode the softmax stays in the
    input dtype and fully masked query rows get zero probabilities."""
    n_rep = module.num_key_value_groups
    k = key.repeat_interleave(n_rep, dim=1)
    v = value.repeat_interleave(n_rep, dim=1)
    w = torch.matmul(query, k.transpose(2, 3)) * scaling
    if attention_mask is not None:
        w = w + attention_mask[:, :, :, : k.shape[-2]]
    if Mode.exact:
        p = F.softmax(w, dim=-1)
        if attention_mask is not None:
            masked = attention_mask[:, :, :, : k.shape[-2]] < torch.finfo(w.dtype).min / 2
            p = torch.where(masked.all(dim=-1, keepdim=True), torch.zeros_like(p), p)
    else:
        p = F.softmax(w, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(p, v).transpose(1, 2).contiguous()
    return out, p


def make_rmsnorm_forward(stock):
    def forward(self, x):
        if not Mode.exact:
            return stock(self, x)
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.variance_epsilon))
    return forward


def make_rotary_forward(stock):
    def forward(self, x, position_ids):
        if not Mode.exact:
            return stock(self, x, position_ids)
        inv = self.inv_freq.to(F64)
        freqs = position_ids[:, :, None].to(F64) * inv[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        s = self.attention_scaling
        return (emb.cos() * s).to(x.dtype), (emb.sin() * s).to(x.dtype)
    return forward


for _, (_, _, mod, prefix) in FAMILIES.items():
    mod.eager_attention_forward = attention
    norm = getattr(mod, prefix + "RMSNorm")
    norm.forward = make_rmsnorm_forward(norm.forward)
    rot = getattr(mod, prefix + "RotaryEmbedding")
    rot.forward = make_rotary_forward(rot.forward)


# ---- models and batches ----

def build_model(spec):
    cfg_cls, model_cls, _, _ = FAMILIES[spec["family"]]
    torch.manual_seed(spec["seed"])
    cfg = cfg_cls(attention_dropout=0.0, pad_token_id=PAD_ID, bos_token_id=1,
                  eos_token_id=2, **spec["config"])
    cfg._attn_implementation = "eager"
    model = model_cls(cfg).float()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    tied = model.lm_head.weight is model.model.embed_tokens.weight
    assert tied == spec["config"]["tie_word_embeddings"], spec["name"]
    model.eval()
    return model


def make_batch(spec):
    """input_ids, attention_mask, position_ids, labels (int64) for the rows
    of `spec`; positions follow padding (cumsum of the mask, from 0)."""
    ids, mask, labels = padded_batch(spec["config"]["vocab_size"], spec["rows"],
                                     spec["seed"] + 1, T, PAD_ID, low=4)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, pos, labels


def run(model, ids, mask, pos, labels, exact):
    Mode.exact = exact
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
    loss = lm_loss(out.logits, labels)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    Mode.exact = False
    return out.logits.detach(), loss.detach(), grads


def relerr(a, b, keep=None):
    if keep is not None:
        a, b = a[keep], b[keep]
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def published_config(cfg_json):
    """config.json as the published checkpoints spell RoPE."""
    c = dict(cfg_json)
    rp = c.pop("rope_parameters", None) or {}
    c["rope_theta"] = rp.get("rope_theta", 10000.0)
    scaling = {k: v for k, v in rp.items() if k != "rope_theta"}
    c["rope_scaling"] = None if scaling.get("rope_type", "default") == "default" else scaling
    return c


def make_fixture(spec):
    out_dir = os.path.join(FIXTURES, spec["name"])
    os.makedirs(out_dir, exist_ok=True)
    model = build_model(spec)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = PAD_ID
    model.save_pretrained(out_dir, safe_serialization=True)
    with open(os.path.join(out_dir, "config.json")) as f:
        cfg_json = json.load(f)
    with open(os.path.join(out_dir, "config.published.json"), "w") as f:
        json.dump(published_config(cfg_json), f, indent=2, sort_keys=True)
        f.write("\n")

    ids, mask, pos, labels = make_batch(spec)

    # greedy generation by the stock float32 model
    gens = {}
    g = torch.Generator().manual_seed(spec["seed"] + 2)
    vocab = spec["config"]["vocab_size"]
    for i, plen in enumerate((3, 6)):
        prompt = torch.randint(4, vocab, (1, plen), generator=g)
        with torch.no_grad():
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                 max_new_tokens=GEN_NEW, min_new_tokens=GEN_NEW,
                                 do_sample=False)
        assert out.shape[1] == plen + GEN_NEW
        gens[f"gen.{i}.prompt"] = prompt.to(torch.int32)
        gens[f"gen.{i}.ids"] = out.to(torch.int32)

    logits32, loss32, _ = run(model, ids, mask, pos, labels, exact=False)
    model.double()
    logits, loss, grads = run(model, ids, mask, pos, labels, exact=True)
    keep = mask.bool()
    # The stock float32 model against the reference at the unpadded
    # positions: float32 rounding (about 1e-6), which shows the patches
    # change precision and the padded-row convention only.
    print(f"{spec['name']}: loss {loss.item():.6f} (stock f32 {loss32.item():.6f}); "
          f"stock f32 logits vs reference {relerr(logits32.double(), logits, keep):.2e}")

    rot = model.model.rotary_emb
    ref = {
        "input_ids": ids.to(torch.int32),
        "attention_mask": mask.to(torch.int32),
        "position_ids": pos.to(torch.int32),
        "labels": labels.to(torch.int32),
        "logits": logits,
        "loss": loss,
        "rope.inv_freq": rot.inv_freq.to(F64).clone(),
        **gens,
    }
    for n, gr in grads.items():
        ref["grad." + n] = gr
    save_file({k: v.contiguous() for k, v in ref.items()},
              os.path.join(out_dir, "reference.safetensors"))


def main():
    for spec in FIXTURE_SPECS:
        make_fixture(spec)


if __name__ == "__main__":
    main()
