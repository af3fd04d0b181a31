"""`archc eval`: a checkpoint's loss, top-1 and top-5 error on a test split, and its confusion
matrix drawn for up to 100 classes.

The images are normalised with the statistics the checkpoint was trained with (stored in it),
so a checkpoint evaluates the same on any machine.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from archc.files import refusal_to_write
from archc.train import checkpoint, distributed, metrics
from archc.train.config import Config
from archc.train.errors import DataError
from archc.train.loop import evaluate
from archc.train.state import prepare


def evaluate_checkpoint(path: Path, net: str, data: str | None, overrides: tuple,
                        device: str, resize, gray_to_rgb, confusion_png: Path | None) -> dict:
    if confusion_png is not None and \
            (refusal := refusal_to_write(confusion_png, path)) is not None:
        raise DataError(refusal)
    state = checkpoint.load(path)
    config = Config.from_json(json.loads(state["config"])) if "config" in state else Config(net)
    config = replace(config, net=net, data=data or config.data, overrides=overrides,
                     device=device, resize=bool(resize or config.resize),
                     gray_to_rgb=bool(gray_to_rgb or config.gray_to_rgb), backend="torch",
                     ema=0.0)
    run = prepare(config, distributed.setup(device), writes=False)
    checkpoint.check_fits(path, state["model"], run.model)
    run.model.load_state_dict(state["model"])
    if state.get("ema") is not None:  # the Polyak average, as the run reported it
        averaged = {k.removeprefix("module."): v for k, v in state["ema"].items()
                    if k.startswith("module.")}
        run.model.load_state_dict(averaged)
    if "mean" in state:
        run.mean, run.std = state["mean"].to(run.device), state["std"].to(run.device)
    pairs: list = []
    figures = evaluate(run.model, run.test, run, 256, pairs)
    predicted = torch.cat([p for p, _ in pairs]) if pairs else torch.zeros(0, dtype=torch.long)
    labels = torch.cat([y for _, y in pairs]) if pairs else torch.zeros(0, dtype=torch.long)
    figures = {"checkpoint": str(path), "data": config.data, **figures}
    if run.classes <= metrics.MAX_CONFUSION_CLASSES:
        target = confusion_png or path.with_name(path.stem + "-confusion.png")
        counts = metrics.confusion(predicted, labels, run.classes)
        names = list(run.test.classes) + [str(i) for i in range(len(run.test.classes),
                                                                  run.classes)]
        metrics.plot_confusion(counts, names, target)
        figures["confusion_png"] = str(target)
    return figures
