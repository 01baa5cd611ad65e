#!/usr/bin/env python3
"""make_sft_trainer_fixture.py: one optimizer step of Hugging Face's
Trainer with gradient accumulation over loss-masked rows of unequal
counted-target counts, for hug's test of the loss normalisation
(tests/test_train_tokens.c, train_sft_step_matches_hf_trainer).

Since transformers 4.46 the Trainer divides each micro-batch's summed token
loss by num_items_in_batch, the counted (label != -100) targets of the
whole accumulated batch, so the step is the gradient of the mean over every
counted target of the step. hug does the same.

The model is tests/fixtures/bloom-tiny-a (made by make_bloom_fixtures.py;
dropout 0). Four rows of 9 tokens with labels masked (-100) on a prompt of
a different length in each row (7, 4, 2 and 8 counted targets: PROMPTS),
per_device_train_batch_size 2,
gradient_accumulation_steps 2, max_steps 1, plain SGD (optim "sgd", no
momentum, no weight decay), constant learning rate without warm-up,
clipping off (max_grad_norm 0). Written to tests/fixtures/sft-trainer.safetensors:

  input_ids (4, 9) i32, labels (4, 9) i32 (-100 where not counted),
  loss () f64: the Trainer's logged training loss of the step,
  loss_check () f64: the same computed here directly (sum of the counted
      token losses of the four rows / their count), before the update,
  lr () f64,
  param.<name> f32: every parameter after the step (Hugging Face names;
      the tied lm_head is transformer.word_embeddings.weight).

hug reproduces the step from a shard of the four rows with a loss mask
(mask[t] = labels[t] != -100; hug's target t is token t + 1, so
labels[:, 0] never counts).

Run from anywhere:   python3 tools/ref/make_sft_trainer_fixture.py
Needs: pip install torch transformers safetensors
"""
import os
import tempfile

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import BloomForCausalLM, Trainer, TrainingArguments

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "fixtures", "bloom-tiny-a")
OUT = os.path.join(ROOT, "tests", "fixtures", "sft-trainer.safetensors")
LR = 0.5
# counted targets per row: the first `prompt` labels are -100
PROMPTS = [1, 4, 6, 0]


def rows():
    g = torch.Generator().manual_seed(4242)
    ids = torch.randint(4, 97, (4, 9), generator=g)
    labels = ids.clone()
    for r, p in enumerate(PROMPTS):
        labels[r, : p + 1] = -100  # label 0 never counts (shifted)
    return ids, labels


class Rows(torch.utils.data.Dataset):
    def __init__(self, ids, labels):
        self.ids, self.labels = ids, labels

    def __len__(self):
        return self.ids.shape[0]

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i],
                "attention_mask": torch.ones_like(self.ids[i])}


def direct_loss(model, ids, labels):
    with torch.no_grad():
        logits = model(input_ids=ids).logits.double()
    lg = logits[:, :-1].reshape(-1, logits.shape[-1])
    tg = labels[:, 1:].reshape(-1)
    return F.cross_entropy(lg, tg, ignore_index=-100, reduction="sum") / (tg != -100).sum()


def main():
    torch.manual_seed(0)
    ids, labels = rows()
    model = BloomForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32)
    model.config.hidden_dropout = 0.0
    model.config.attention_dropout = 0.0
    check = direct_loss(model.eval(), ids, labels).item()
    counts = (labels[:, 1:] != -100).sum(1).tolist()
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=2, gradient_accumulation_steps=2,
            max_steps=1, learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0,
            weight_decay=0.0, max_grad_norm=0.0, optim="sgd", logging_steps=1,
            report_to=[], use_cpu=True, seed=0, save_strategy="no",
            dataloader_drop_last=False)
        trainer = Trainer(model=model, args=args, train_dataset=Rows(ids, labels))
        trainer.train()
        logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    print(f"counted targets per row {counts}; direct loss {check:.9f}; "
          f"Trainer logged {logged}")
    assert len(logged) == 1 and abs(logged[0] - check) < 1e-4, "loss not normalised per token"
    out = {"input_ids": ids.to(torch.int32), "labels": labels.to(torch.int32),
           "loss": torch.tensor(logged[0], dtype=torch.float64),
           "loss_check": torch.tensor(check, dtype=torch.float64),
           "lr": torch.tensor(LR, dtype=torch.float64)}
    for name, p in model.named_parameters():
        out["param." + name] = p.detach().float().contiguous().clone()
    save_file(out, OUT)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
