"""Networks written by hand in plain PyTorch, independently of archc, to test and time it against.

Each declares its layers in the order of the paper's table, so parameters can be copied from a
compiled module in declaration order. Outputs are softmax probabilities (eval mode), as archc's
modules give in eval mode.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class NinCifar10(nn.Module):
    """The authors' Caffe NIN for CIFAR-10, written by hand."""

    def __init__(self):
        super().__init__()

        def mlpconv(cin, k, pad, c1, c2, c3):
            return [nn.Conv2d(cin, c1, k, padding=pad), nn.ReLU(), nn.Conv2d(c1, c2, 1),
                    nn.ReLU(), nn.Conv2d(c2, c3, 1), nn.ReLU()]

        self.features = nn.Sequential(
            *mlpconv(3, 5, 2, 192, 160, 96), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Dropout(0.5),
            *mlpconv(96, 5, 2, 192, 192, 192), nn.AvgPool2d(3, 2, ceil_mode=True),
            nn.Dropout(0.5), *mlpconv(192, 3, 1, 192, 192, 10), nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return F.softmax(torch.flatten(self.features(x), 1), dim=1)


class VggA(nn.Module):
    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000))

    def forward(self, x):
        return F.softmax(self.classifier(torch.flatten(self.features(x), 1)), dim=1)


class Inception(nn.Module):
    """GoogLeNet's inception module as torchvision writes it (with a 5x5 branch)."""

    def __init__(self, cin, n1, n3r, n3, n5r, n5, proj):
        super().__init__()
        self.b1 = nn.Conv2d(cin, n1, 1)
        self.b2 = nn.Sequential(nn.Conv2d(cin, n3r, 1), nn.ReLU(), nn.Conv2d(n3r, n3, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(cin, n5r, 1), nn.ReLU(), nn.Conv2d(n5r, n5, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), nn.Conv2d(cin, proj, 1))

    def forward(self, x):
        return torch.cat([F.relu(b(x)) for b in (self.b1, self.b2, self.b3, self.b4)], 1)


class GoogLeNet(nn.Module):
    """GoogLeNet's deployment network (Table 1 with Figure 3's LRNs, no auxiliary heads)."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3), nn.ReLU(),
            nn.MaxPool2d(3, 2, ceil_mode=True), nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0),
            nn.Conv2d(64, 64, 1), nn.ReLU(), nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(),
            nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0), nn.MaxPool2d(3, 2, ceil_mode=True))
        self.stage3 = nn.Sequential(
            Inception(192, 64, 96, 128, 16, 32, 32), Inception(256, 128, 128, 192, 32, 96, 64),
            nn.MaxPool2d(3, 2, ceil_mode=True))
        self.stage4 = nn.Sequential(
            Inception(480, 192, 96, 208, 16, 48, 64), Inception(512, 160, 112, 224, 24, 64, 64),
            Inception(512, 128, 128, 256, 24, 64, 64), Inception(512, 112, 144, 288, 32, 64, 64),
            Inception(528, 256, 160, 320, 32, 128, 128), nn.MaxPool2d(3, 2, ceil_mode=True))
        self.stage5 = nn.Sequential(
            Inception(832, 256, 160, 320, 32, 128, 128),
            Inception(832, 384, 192, 384, 48, 128, 128), nn.AvgPool2d(7, 1), nn.Dropout(0.4))
        self.fc = nn.Linear(1024, classes)

    def forward(self, x):
        x = self.stage5(self.stage4(self.stage3(self.stem(x))))
        return F.softmax(self.fc(torch.flatten(x, 1)), dim=1)


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock, written by hand."""

    def __init__(self, cin: int, c: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or cin != c:
            self.downsample = nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False),
                                            nn.BatchNorm2d(c))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class Bottleneck(nn.Module):
    """torchvision's ResNet Bottleneck (stride on the 3x3), written by hand."""

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, 4 * width, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * width)
        self.downsample = None
        if stride != 1 or cin != 4 * width:
            self.downsample = nn.Sequential(nn.Conv2d(cin, 4 * width, 1, stride, bias=False),
                                            nn.BatchNorm2d(4 * width))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet(nn.Module):
    """torchvision's ResNet (logits out), written by hand: ResNet(BasicBlock, [2, 2, 2, 2])."""

    def __init__(self, block, layers: list[int], classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        expansion = 4 if block is Bottleneck else 1
        stages, cin = [], 64
        for i, (width, count) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(count):
                blocks.append(block(cin, width, 2 if j == 0 and i > 0 else 1))
                cin = width * expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512 * expansion, classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
