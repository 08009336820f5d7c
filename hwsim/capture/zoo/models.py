"""The seed paper's model zoo, sized from the dataset (channels, classes, image size).

LeNet-5, VGG11 and the ResNets use BatchNorm (that is why their plain-backprop δz is dense in
the paper's Table 1); AlexNet and the MLPs do not. The ResNet blocks use in-place ReLU and an
in-place residual ``out += identity`` on purpose: capture must handle both. Two small
transformers, ``vit_digits`` and the character-level ``gpt_char``, live in
:mod:`hwsim.capture.zoo.transformers` and are registered here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from hwsim.capture.config import MODEL_KIND
from hwsim.capture.zoo.transformers import GPTChar, ViTDigits


def _flat_dim(features: nn.Module, in_channels: int, image_size: int) -> int:
    """Size of the flattened feature map (one dry forward, no grad), so any image size works."""
    with torch.no_grad():
        return int(features(torch.zeros(1, in_channels, image_size, image_size)).numel())


class MLP(nn.Module):
    """Fully connected ReLU network on flattened images."""

    def __init__(self, *, in_features: int, hidden: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU(inplace=True)]
            prev = h
        layers.append(nn.Linear(prev, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LeNet5(nn.Module):
    """LeNet-5 (6-16 conv 5×5, 120-84 fc) with BatchNorm and max-pooling."""

    def __init__(self, *, in_channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        flat = _flat_dim(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 120), nn.ReLU(inplace=True), nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class AlexNetCifar(nn.Module):
    """AlexNet for small images: 5 convs (64-192-384-256-256), fc 2048-2048 (paper §4), no BatchNorm."""

    def __init__(self, *, in_channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        flat = _flat_dim(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(flat, 2048), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(2048, 2048), nn.ReLU(inplace=True), nn.Linear(2048, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


_VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11Cifar(nn.Module):
    """VGG11 with BatchNorm; classifier hidden layers reduced to 512 (paper §4)."""

    def __init__(self, *, in_channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for v in _VGG11:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
                c = int(v)
        self.features = nn.Sequential(*layers)
        flat = _flat_dim(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 512), nn.ReLU(inplace=True), nn.Linear(512, 512), nn.ReLU(inplace=True),
            nn.Linear(512, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """ResNet basic block; in-place ReLU after BN and in-place residual add."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return self.relu(out)


class ResNet18(nn.Module):
    """ResNet-18. ``imagenet=True``: 7×7/2 stem + max-pool (224² geometry); else the CIFAR 3×3 stem."""

    def __init__(self, *, in_channels: int, num_classes: int, imagenet: bool) -> None:
        super().__init__()
        if imagenet:
            stem = [nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                    nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)]
        else:
            stem = [nn.Conv2d(in_channels, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)]
        self.stem = nn.Sequential(*stem)
        blocks: list[nn.Module] = []
        cin = 64
        for i, cout in enumerate((64, 128, 256, 512)):
            for j in range(2):
                blocks.append(BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


Builder = Callable[[int, int, int], nn.Module]

MODELS: dict[str, Builder] = {
    "mlp500": lambda c, n, s: MLP(in_features=c * s * s, hidden=(500, 500), num_classes=n),
    "lenet300": lambda c, n, s: MLP(in_features=c * s * s, hidden=(300, 100), num_classes=n),
    "lenet5": lambda c, n, s: LeNet5(in_channels=c, num_classes=n, image_size=s),
    "alexnet_cifar": lambda c, n, s: AlexNetCifar(in_channels=c, num_classes=n, image_size=s),
    "vgg11_cifar": lambda c, n, s: VGG11Cifar(in_channels=c, num_classes=n, image_size=s),
    "resnet18_cifar": lambda c, n, s: ResNet18(in_channels=c, num_classes=n, imagenet=False),
    "resnet18": lambda c, n, s: ResNet18(in_channels=c, num_classes=n, imagenet=True),
    "vit_digits": lambda c, n, s: ViTDigits(in_channels=c, num_classes=n, image_size=s),
    # a language model: num_classes is the vocabulary, image_size the context (tokens per example)
    "gpt_char": lambda c, n, s: GPTChar(vocab=n, context=s),
}

# What each model reads ("image" or "text"): hwsim.capture.config.MODEL_KIND, torch-free, names the same models.
KIND = MODEL_KIND

# Image side each model is built for when the dataset allows resizing (digits are 8×8).
PREFERRED_SIZE = {"mlp500": None, "lenet300": None, "lenet5": 28, "alexnet_cifar": 32, "vgg11_cifar": 32,
                  "resnet18_cifar": 32, "resnet18": 224, "vit_digits": None, "gpt_char": 32}
# (for a text model: the context length in tokens)


def build_model(name: str, *, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """Instantiate a zoo model; an unknown name raises ``ValueError`` listing the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    for f, v in (("in_channels", in_channels), ("num_classes", num_classes), ("image_size", image_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"model {name!r}: {f} must be a positive integer, got {v!r}")
    return MODELS[name](in_channels, num_classes, image_size)
