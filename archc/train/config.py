"""The run's configuration, the papers' recipes, and the learning-rate schedule. No torch.

`Config` holds every choice of a run; it is written to `DIR/run.json` and into every
checkpoint (as JSON), so `--resume DIR` needs nothing else. A recipe is a set of defaults
from a paper, applied under what the command line gives explicitly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Config:
    net: str
    data: str = "digits"
    out: str = ""  # default: runs/<the .arch file's name>
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "sgd"  # sgd (with momentum) or adamw
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # constant, step, exp, multistep, cosine, plateau
    step_size: float = 8  # step: epochs between decays
    gamma: float = 0.1  # step, exp, multistep, plateau: the factor of each decay
    milestones: tuple[float, ...] = ()  # multistep: epochs, or fractions of the run if < 1
    patience: int = 2  # plateau: epochs without a better test error before a decay
    warmup: float = 0.0  # epochs of linear warm-up
    bias_lr_mult: float = 1.0  # biases' learning rate multiple (Caffe's NIN solver: 2)
    bias_decay: bool = True  # weight decay on biases (Caffe's NIN solver: none)
    label_smoothing: float = 0.0
    ema: float = 0.0  # Polyak (exponential) averaging of the weights: decay per step
    crop_pad: int = 0  # random crops of the input size from images padded by this
    flip: bool = False
    scale_crop: tuple[float, float] = ()  # random area fraction of crops (aspect 3/4..4/3)
    seed: int = 0
    device: str = "cpu"
    amp: str = "none"  # none, bf16, fp16 (autocast, on CUDA)
    channels_last: bool = False
    backend: str = "torch"
    save_every: int = 0  # steps between mid-epoch checkpoints (0: at epoch ends only)
    keep: int = 3
    resize: bool = False
    gray_to_rgb: bool = False
    overrides: tuple[tuple[str, float], ...] = ()
    recipe: str = ""
    init_from: str = ""
    max_steps: int = 0  # stop after this many steps in all (0: run every epoch)
    timeout: int = 300  # seconds a rank waits for the others (torch's default: 30 minutes)

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> Config:
        known = {f.name for f in fields(Config)}
        data = {k: v for k, v in data.items() if k in known}
        for key in ("milestones", "scale_crop"):
            data[key] = tuple(data.get(key, ()))
        data["overrides"] = tuple(tuple(pair) for pair in data.get("overrides", ()))
        return Config(**data)


# name -> (what it follows, its defaults). Each cites its source; docs/training.md explains.
RECIPES: dict[str, tuple[str, dict]] = {
    "nin": ("Lin et al. 2013, the authors' CIFAR-10 Caffe solver: SGD lr 0.1, momentum 0.9, "
            "weight decay 1e-4, batch 128, lr x0.1 after 5/6 of the run (100k of 120k "
            "iterations), biases at twice the lr without decay, no augmentation",
            {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4,
             "batch_size": 128, "schedule": "multistep", "milestones": (5 / 6,), "gamma": 0.1,
             "bias_lr_mult": 2.0, "bias_decay": False}),
    "googlenet": ("Szegedy et al. 2014, section 6: SGD momentum 0.9, lr down 4% every 8 "
                  "epochs, Polyak averaging, crops of 8-100% of the area with aspect 3/4..4/3, "
                  "flips; lr 0.01, batch 32 and weight decay 2e-4 from BVLC's replication "
                  "(the paper gives none)",
                  {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 2e-4,
                   "batch_size": 32, "schedule": "step", "step_size": 8, "gamma": 0.96,
                   "ema": 0.999, "scale_crop": (0.08, 1.0), "flip": True}),
    "vgg": ("Simonyan and Zisserman 2014, section 3.1: batch 256, momentum 0.9, weight decay "
            "5e-4, lr 1e-2 divided by 10 when the validation accuracy stops improving, flips, "
            "scale jittering (here: crops of 19-77% of the area, as 224 of S in [256, 512])",
            {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
             "batch_size": 256, "schedule": "plateau", "gamma": 0.1, "flip": True,
             "scale_crop": (0.19, 0.77)}),
}


class Schedule:
    """The learning rate at a fractional epoch: warm-up times the schedule's decay.
    `plateau` decays when `observe`d test errors stop improving; its state is two numbers."""

    def __init__(self, config: Config):
        self.c = config
        self.best = math.inf
        self.bad_epochs = 0
        self.decays = 0

    def lr(self, epoch: float) -> float:
        c = self.c
        warm = min(1.0, (epoch + 1e-9) / c.warmup) if c.warmup else 1.0
        return c.lr * warm * self._decay(epoch)

    def _decay(self, epoch: float) -> float:
        c = self.c
        if c.schedule == "step":
            return c.gamma ** math.floor(epoch / c.step_size)
        if c.schedule == "exp":
            return c.gamma ** epoch
        if c.schedule == "multistep":
            marks = [m * c.epochs if m < 1 else m for m in c.milestones]
            return c.gamma ** sum(epoch >= m for m in marks)
        if c.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(epoch / c.epochs, 1.0)))
        if c.schedule == "plateau":
            return c.gamma ** self.decays
        return 1.0

    def observe(self, test_error: float) -> None:
        if test_error < self.best - 1e-12:
            self.best, self.bad_epochs = test_error, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.c.patience:
            self.decays += 1
            self.bad_epochs = 0

    def state(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "decays": self.decays}

    def load(self, state: dict) -> None:
        self.best, self.bad_epochs, self.decays = (state["best"], state["bad_epochs"],
                                                   state["decays"])


SCHEDULES = ("constant", "step", "exp", "multistep", "cosine", "plateau")
