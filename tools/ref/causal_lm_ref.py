"""causal_lm_ref.py: what the causal-LM fixture scripts share: a padded
batch of random ids and transformers' causal-LM loss without its float32
cast (make_bloom_fixtures.py, make_family_fixtures.py)."""
import torch
import torch.nn.functional as F


def padded_batch(vocab, rows, seed, T, pad_id, low=0):
    """input_ids, attention_mask, labels (int64, (len(rows), T)) for rows
    "full" (no padding), "right3" (last 3 padded), "left2" (first 2): ids
    uniform in [low, vocab) from a generator seeded with `seed`, pad_id at
    padding, labels = ids with -100 at padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(low, vocab, (len(rows), T), generator=g)
    mask = torch.ones(len(rows), T, dtype=torch.int64)
    for i, kind in enumerate(rows):
        if kind == "right3":
            mask[i, T - 3:] = 0
        elif kind == "left2":
            mask[i, :2] = 0
        else:
            assert kind == "full"
    ids = torch.where(mask == 1, ids, torch.full_like(ids, pad_id))
    labels = torch.where(mask == 1, ids, torch.full_like(ids, -100))
    return ids, mask, labels


def lm_loss(logits, labels):
    """transformers' ForCausalLMLoss without the logits.float() cast:
    logits at t predict labels[t + 1], mean over counted targets."""
    shift = F.pad(labels, (0, 1), value=-100)[..., 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                           shift.reshape(-1), ignore_index=-100)
