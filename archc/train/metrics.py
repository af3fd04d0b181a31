"""Metrics: top-k errors as the papers report them, the per-epoch log, and the pictures.

- `metrics.jsonl`: one JSON object per epoch (loss, top-1 and top-5 error on train and test,
  learning rate, images/s, seconds).
- `curves.png`: loss, error and learning rate against epochs (matplotlib, no display needed).
- `confusion.png`: the test confusion matrix of `archc eval`, for up to 100 classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

MAX_CONFUSION_CLASSES = 100


class Tally:
    """Running sums kept on the device, read only when reported (no sync per step)."""

    def __init__(self, device, classes: int):
        self.loss = torch.zeros((), device=device, dtype=torch.float64)
        self.top1 = torch.zeros((), device=device, dtype=torch.int64)
        self.top5 = torch.zeros((), device=device, dtype=torch.int64)
        self.count = torch.zeros((), device=device, dtype=torch.int64)
        self.k = min(5, classes)

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        n = len(labels)
        self.loss += loss.detach().double() * n
        best = logits.detach().topk(self.k, dim=1).indices
        hits = best == labels[:, None]
        self.top1 += hits[:, 0].sum()
        self.top5 += hits.any(dim=1).sum()
        self.count += n

    def tensor(self) -> torch.Tensor:
        """The sums as one float64 tensor, to all-reduce across ranks."""
        return torch.stack([self.loss, self.top1.double(), self.top5.double(),
                            self.count.double()])

    @staticmethod
    def summary(sums: torch.Tensor) -> dict:
        loss, top1, top5, count = sums.tolist()
        count = max(count, 1)
        return {"loss": loss / count, "top1_error": 1 - top1 / count,
                "top5_error": 1 - top5 / count, "samples": int(count)}


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [r["epoch"] for r in records]
    figure, (loss, error, lr) = plt.subplots(1, 3, figsize=(13, 3.6))
    loss.plot(epochs, [r["train_loss"] for r in records], label="train")
    loss.plot(epochs, [r["test_loss"] for r in records], label="test")
    loss.set(title="loss", xlabel="epoch")
    error.plot(epochs, [100 * r["train_top1_error"] for r in records], label="train top-1")
    error.plot(epochs, [100 * r["test_top1_error"] for r in records], label="test top-1")
    error.plot(epochs, [100 * r["test_top5_error"] for r in records], "--", label="test top-5")
    error.set(title="error (%)", xlabel="epoch")
    lr.plot(epochs, [r["lr"] for r in records])
    lr.set(title="learning rate (end of epoch)", xlabel="epoch")
    for axes in (loss, error):
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def confusion(predictions: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """counts[true, predicted]."""
    flat = labels.long() * classes + predictions.long()
    return torch.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def plot_confusion(counts: torch.Tensor, names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = counts.shape[0]
    rates = counts.double() / counts.sum(1, keepdim=True).clamp_min(1)
    figure, axes = plt.subplots(figsize=(max(4, n * 0.35 + 2),) * 2)
    image = axes.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, label="fraction of the true class")
    if n <= 30:
        axes.set_xticks(range(n), names[:n], rotation=90)
        axes.set_yticks(range(n), names[:n])
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    axes.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                              color="white" if rates[i, j] > 0.5 else "black")
    axes.set(xlabel="predicted", ylabel="true", title="confusion matrix (test)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
