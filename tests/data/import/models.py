"""Sources for tests/test_import.py: callables returning nn.Modules, as a user's file holds them."""

from __future__ import annotations

import sys
from pathlib import Path

from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))


class Unit(nn.Module):
    """A block of the user's: conv, bn, relu, with a shortcut where the shape keeps."""

    def __init__(self, c_in: int, c: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.ReLU(inplace=True)
        self.residual = c_in == c and stride == 1

    def forward(self, x):
        y = self.act(self.bn(self.conv(x)))
        return x + y if self.residual else y


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.stage1 = nn.Sequential(Unit(16, 16, 1), Unit(16, 16, 1))
        self.stage2 = nn.Sequential(Unit(16, 32, 2), Unit(32, 32, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stage2(self.stage1(self.stem(x)))
        return self.head(self.pool(x).flatten(1))


def tiny() -> nn.Module:
    return Tiny()


def shuffled() -> nn.Module:
    class Permuted(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1)

    return nn.Sequential(nn.Conv2d(3, 8, 1), Permuted())


def torchvision_model(name: str) -> nn.Module:
    from torchvision_oracle import torchvision

    return getattr(torchvision().models, name)()


def resnet18() -> nn.Module:
    return torchvision_model("resnet18")


def branching() -> nn.Module:
    class Branching(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 1)

        def forward(self, x):
            return self.conv(x) if x.sum() > 0 else x  # data-dependent: no static graph

    return Branching()
