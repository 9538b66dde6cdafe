"""A tiny Lightning module, as users write it: ``python lightning_train.py wandb|tensorboard``.

It logs through that logger and, always, through a ``CSVLogger`` (``csv/metrics.csv``): the
reference for what Lightning logged.
"""

import sys

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger


class Tiny(pl.LightningModule):
    def __init__(self, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: list[torch.Tensor], index: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


torch.manual_seed(0)
x = torch.randn(32, 4)
data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
loader = torch.utils.data.DataLoader(data, batch_size=8)
kind = sys.argv[1]
main = (
    WandbLogger(project="tiny") if kind == "wandb" else TensorBoardLogger("tb", name="", version="")
)
trainer = pl.Trainer(
    max_epochs=2,
    logger=[main, CSVLogger("csv", name="", version="")],
    log_every_n_steps=1,
    accelerator="cpu",
    devices=1,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
trainer.fit(Tiny(), loader, loader)
