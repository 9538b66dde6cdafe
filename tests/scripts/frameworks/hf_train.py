"""A tiny Hugging Face Trainer, as users write it: ``python hf_train.py wandb|tensorboard``.

The model is built from a config (no download); the Trainer's own ``log_history`` is saved
to ``log_history.json`` as the reference for what it logged.
"""

import json
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

report_to = sys.argv[1]
torch.manual_seed(0)
model = GPT2LMHeadModel(
    GPT2Config(
        vocab_size=32, n_positions=8, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0
    )
)


class Tokens(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 32

    def __getitem__(self, i: int) -> dict:
        ids = torch.arange(8) * (i % 3 + 1) % 32
        return {"input_ids": ids, "labels": ids}


args = TrainingArguments(
    output_dir="out",
    report_to=[report_to],
    max_steps=6,
    logging_steps=2,
    eval_strategy="steps",
    eval_steps=3,
    per_device_train_batch_size=4,
    save_strategy="no",
    use_cpu=True,
    disable_tqdm=True,
    dataloader_num_workers=0,
    learning_rate=1e-3,
)
trainer = Trainer(model=model, args=args, train_dataset=Tokens(), eval_dataset=Tokens())
trainer.train()
with open("log_history.json", "w") as fh:
    json.dump(trainer.state.log_history, fh)
