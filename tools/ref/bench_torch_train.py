"""PyTorch + transformers counterpart of bench/bench_train.c: training steps
of BloomForCausalLM, or LlamaForCausalLM with --arch llama (f32, CPU), on
random tokens with AdamW and clipping.

  OMP_NUM_THREADS=2 python3 tools/ref/bench_torch_train.py [--hidden 192 ...]
      [--arch llama --kv-heads 2 --ffn 1408 --attn sdpa|eager]
"""
import argparse
import os
import time

import torch
from transformers import BloomConfig, BloomForCausalLM, LlamaConfig, LlamaForCausalLM


def main():
    p = argparse.ArgumentParser()
    for k, d in [("hidden", 192), ("layers", 4), ("heads", 6), ("vocab", 8192), ("seq", 128),
                 ("batch", 8), ("steps", 20), ("warmup", 3), ("kv-heads", 0), ("ffn", 0)]:
        p.add_argument("--" + k, type=int, default=d)
    p.add_argument("--arch", default="bloom", choices=["bloom", "llama"])
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    a = p.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", "0")) or torch.get_num_threads()
    torch.set_num_threads(threads)
    if a.arch == "llama":
        cfg = LlamaConfig(vocab_size=a.vocab, hidden_size=a.hidden, num_hidden_layers=a.layers,
                          num_attention_heads=a.heads,
                          num_key_value_heads=a.kv_heads or a.heads,
                          intermediate_size=a.ffn or 4 * a.hidden, attention_dropout=0.0,
                          max_position_embeddings=max(2048, a.seq))
        cfg._attn_implementation = a.attn
        model = LlamaForCausalLM(cfg).train()
    else:
        cfg = BloomConfig(vocab_size=a.vocab, hidden_size=a.hidden, n_layer=a.layers,
                          n_head=a.heads, hidden_dropout=0.0, attention_dropout=0.0)
        model = BloomForCausalLM(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    t0 = None
    step_s = []
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            t0 = time.perf_counter()
        s0 = time.perf_counter()
        ids = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)
        tgt = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)
        logits = model(ids).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, a.vocab), tgt.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=False)
        if s >= a.warmup:
            step_s.append(time.perf_counter() - s0)
    dt = time.perf_counter() - t0
    n = sum(p.numel() for p in model.parameters())
    print(f"torch bench_train: {a.arch} ({a.attn if a.arch == 'llama' else 'eager'}), {n} params, batch {a.batch} x seq {a.seq}, {a.steps} steps in "
          f"{dt:.2f} s: {a.steps / dt:.2f} steps/s, {a.steps * a.batch * a.seq / dt:.0f} tokens/s "
          f"(torch {torch.__version__}, {threads} threads)")
    if step_s:
        step_s.sort()
        n = len(step_s)
        med = step_s[n // 2] if n % 2 else 0.5 * (step_s[n // 2 - 1] + step_s[n // 2])
        print(f"torch bench_train steps: fastest {1e3 * step_s[0]:.1f} ms, median {1e3 * med:.1f} ms, "
              f"median/fastest {med / step_s[0]:.2f}")


if __name__ == "__main__":
    main()
