"""A run's state: the net, its data, optimizer, schedule and averages, built from a `Config`
and checked before the first step; what a checkpoint holds of it, and how it comes back.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from archc.train import checkpoint, data
from archc.train.config import Config, Schedule
from archc.train.distributed import Ranks
from archc.train.errors import DataError
from archc.train.resume import fingerprint


@dataclass
class Run:
    config: Config
    ranks: Ranks
    analysis: object
    model: torch.nn.Module
    ddp: torch.nn.Module  # what the steps call: the model, or its DistributedDataParallel
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    schedule: Schedule
    ema: torch.nn.Module | None
    train: data.Split
    test: data.Split
    mean: torch.Tensor
    std: torch.Tensor
    augment: data.Augment
    classes: int
    out: Path
    nonfinite: torch.Tensor = None
    images_per_s: float = 0.0
    started: float = field(default_factory=time.monotonic)
    plotted: float = field(default_factory=time.monotonic)  # when curves.png was last drawn

    @property
    def device(self) -> torch.device:
        return self.ranks.device

    def autocast(self):
        if self.config.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype)

    def evaluated(self) -> torch.nn.Module:
        """The weights a run reports: the Polyak average where one is kept."""
        return self.ema.module if self.ema is not None else self.model

    # ---- checkpoints -----------------------------------------------------------------------

    def state(self) -> dict:
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "schedule": self.schedule.state(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "rng": rng, "config": json.dumps(self.config.to_json()),
                "net_fingerprint": fingerprint(self.analysis.graph),
                "mean": self.mean.cpu(), "std": self.std.cpu()}

    def load_state(self, path: Path, state: dict) -> None:
        checkpoint.check_fits(path, state["model"], self.model)
        self.model.load_state_dict(state["model"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
        except (ValueError, KeyError) as error:
            raise checkpoint.CheckpointError(f"{path}: its optimizer does not fit this run "
                                             f"({error})") from None
        self.schedule.load(state["schedule"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["rng"]["cpu"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)

    def init_from(self, path: Path) -> None:
        """Copy every layer whose name and shape agree (VGG's deeper nets from net A)."""
        weights = checkpoint.load(path)["model"]
        own = self.model.state_dict()
        copied = {k: v for k, v in weights.items() if k in own and v.shape == own[k].shape}
        if not copied:
            raise checkpoint.CheckpointError(f"{path}: no layer of it fits this net")
        self.model.load_state_dict(copied, strict=False)
        self.ranks.say(f"initialised {len(copied)} of {len(own)} tensors from {path}")

    # ---- reports ---------------------------------------------------------------------------

    def manifest(self) -> dict:
        from importlib.metadata import PackageNotFoundError, version

        def installed(name: str) -> str:
            try:
                return version(name)
            except PackageNotFoundError:
                return "not installed"

        return {"command": sys.argv, "cwd": os.getcwd(), "config": self.config.to_json(),
                "arch_source": Path(self.config.net).read_text(encoding="utf-8-sig"),
                "seed": self.config.seed, "world_size": self.ranks.world,
                "versions": {"python": platform.python_version(), "torch": torch.__version__,
                             **{name: installed(name) for name in ("triton", "numpy", "lark")}}}

    def plan(self) -> dict:
        c = self.config
        steps = data.steps_per_epoch(len(self.train), c.batch_size, self.ranks.world)
        shapes, graph = self.analysis.shapes, self.analysis.graph
        values = sum(shapes[n].numel() for n in graph.order())  # every layer's output
        element = 2 if c.amp != "none" else 4
        params = sum(p.numel() for p in self.model.parameters())
        return {"net": c.net, "data": c.data, "train_images": len(self.train),
                "test_images": len(self.test), "classes": self.classes,
                "input": list(self.train.images.shape[1:]), "steps_per_epoch": steps,
                "total_steps": steps * c.epochs, "batch_size": c.batch_size,
                "params": params,
                "batch_activation_bytes": values * c.batch_size * element,
                "state_bytes": params * 4 * (3 if c.momentum or c.optimizer == "adamw" else 2),
                "device": str(self.device), "world_size": self.ranks.world}


def prepare(config: Config, ranks: Ranks, writes: bool = True) -> Run:
    """Everything a run needs, or an error (ArchError, DataError) before any step.
    `writes=False` (evaluation) leaves the out folder alone."""
    from archc.backends.registry import BACKENDS
    from archc.codegen.lower import lower
    from archc.pipeline import analyse

    analysis = analyse(config.net, dict(config.overrides)).raise_errors()
    shape = tuple(analysis.shapes[analysis.graph.input])
    classes = analysis.shapes[analysis.graph.output].c
    size = shape[1:] if config.resize else None
    train, test = data.load(config.data, size)
    train, test = (data.fit(s, shape, classes, f"{config.data} {name}", config.resize,
                            config.gray_to_rgb) for s, name in ((train, "train"), (test, "test")))
    if config.crop_pad > max(shape[1:]):  # padded crops of zeros, each batch a huge allocation
        raise DataError(f"--crop-pad {config.crop_pad} is more than the input's "
                        f"{shape[1]}x{shape[2]} pixels: give at most {max(shape[1:])}")
    out = Path(config.out)
    if ranks.main and writes:
        checkpoint.writable(out)
    if config.device == "cuda" and not torch.cuda.is_available():
        raise DataError("--device cuda: no CUDA device here (use --device cpu)")
    if config.amp == "fp16" and ranks.device.type != "cuda":  # no loss scaler off CUDA, and
        raise DataError("--amp fp16 trains on CUDA only (its loss scaler); on the CPU give "
                        "--amp bf16 or none")  # float16 on the CPU is slow and underflows
    torch.manual_seed(config.seed)
    # logits in eval mode too: the loss is measured on them (the softmax is monotone)
    model = lower(analysis, heads=True, logits=True, backend=BACKENDS[config.backend]).module
    model = model.to(ranks.device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ddp = model
    if ranks.world > 1:
        # Gradients written straight into the all-reduce buckets: no copy, and no stride
        # mismatch on size-1 dims (a 1x1 conv on 1x1 inputs) to warn about on every step.
        ddp = torch.nn.parallel.DistributedDataParallel(model, gradient_as_bucket_view=True)
        # What is left is the first backward's check on size-1 dims, which PyTorch's
        # maintainers call spurious (same physical layout; pytorch/pytorch#47163).
        warnings.filterwarnings("ignore", "Grad strides do not match bucket view strides",
                                UserWarning)
    mean, std = data.statistics(train)
    return Run(config, ranks, analysis, model, ddp, _optimizer(model, config),
               torch.amp.GradScaler(ranks.device.type,
                                    enabled=config.amp == "fp16" and ranks.device.type == "cuda"),
               Schedule(config), _ema(model, config), train.to(ranks.device),
               test.to(ranks.device), mean.to(ranks.device), std.to(ranks.device),
               data.Augment(config.crop_pad, config.flip, tuple(config.scale_crop)), classes,
               out, nonfinite=torch.zeros((), dtype=torch.bool, device=ranks.device))


def _optimizer(model: torch.nn.Module, c: Config) -> torch.optim.Optimizer:
    """Weights and biases in two groups: biases may take another lr and skip the decay."""
    weights = [p for n, p in model.named_parameters() if not n.endswith("bias")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    groups = [{"params": weights, "lr_mult": 1.0, "weight_decay": c.weight_decay},
              {"params": biases, "lr_mult": c.bias_lr_mult,
               "weight_decay": c.weight_decay if c.bias_decay else 0.0}]
    if c.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=c.lr)
    return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum)


def _ema(model: torch.nn.Module, c: Config):
    if not c.ema:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(c.ema), use_buffers=True)
