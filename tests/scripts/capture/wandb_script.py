"""A script written for W&B, unchanged: plain `import wandb`."""

import wandb

run = wandb.init(project="demo", config={"lr": 0.1, "epochs": 4})
wandb.define_metric("val/*", step_metric="epoch")
for step in range(20):
    wandb.log({"train/loss": 1.0 / (step + 1), "lr": wandb.config.lr})
    if (step + 1) % 5 == 0:
        wandb.log({"val/acc": (step + 1) / 20, "epoch": (step + 1) // 5}, commit=False)
wandb.summary["best_acc"] = 1.0
run.finish()
