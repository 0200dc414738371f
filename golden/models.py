"""The float models: the source article's two MLPs, and the digits MLP.

``SimpleModel`` and ``AcceleratedModel`` are written exactly as the article
writes them (a user pastes classes like these), so the importer has to read a
module whose ``forward`` is a chain, not only an ``nn.Sequential``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SimpleModel", "AcceleratedModel", "digits_mlp", "DIGITS_HIDDEN"]

#: Hidden width of the digits MLP (64 -> DIGITS_HIDDEN -> 10).
DIGITS_HIDDEN = 32


class SimpleModel(nn.Module):
    """The article's model: Linear(10, 5) -> ReLU -> Linear(5, 1), with bias."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 5)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(5, 1)

    def forward(self, x):
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        return x


class AcceleratedModel(nn.Module):
    """The article's accelerator-friendly variant: the same chain with ``bias=False``."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 5, bias=False)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(5, 1, bias=False)

    def forward(self, x):
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        return x


def digits_mlp(hidden: int = DIGITS_HIDDEN) -> nn.Sequential:
    """The digits classifier: Linear(64, hidden) -> ReLU -> Linear(hidden, 10)."""
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
