"""Deterministic training of the golden float models.

* The article's models: SGD lr 0.01, MSELoss, 100 full-batch epochs on
  ``torch.randn(100, 10)`` inputs and ``torch.randn(100, 1)`` labels, all drawn
  from ``torch.manual_seed(seed)`` in the article's order (model, then inputs,
  then labels).
* The digits MLP: scikit-learn's bundled 8x8 digits (no download), pixels
  scaled to ``[0, 1]`` by ``/ 16``, a fixed stratified split (``test_size=0.25``,
  ``random_state=0``), Adam full-batch, seeded.

Every function runs inside :func:`deterministic`, which forks the torch RNG and
pins the thread count, so calling it twice gives bit-identical weights and the
caller's RNG state is untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
from torch import nn

from .models import AcceleratedModel, SimpleModel, digits_mlp

__all__ = ["deterministic", "ArticleRun", "train_article", "DigitsData", "load_digits",
           "DigitsRun", "train_digits", "accuracy", "ARTICLE_EPOCHS", "ARTICLE_LR",
           "DIGITS_EPOCHS", "DIGITS_SCALE"]

ARTICLE_EPOCHS = 100
ARTICLE_LR = 0.01
DIGITS_EPOCHS = 300
DIGITS_LR = 0.01
#: Digits pixels are integers 0..16; the model sees ``pixel / DIGITS_SCALE``.
DIGITS_SCALE = 16.0
DIGITS_TEST_SIZE = 0.25
DIGITS_SPLIT_SEED = 0


@contextlib.contextmanager
def deterministic(seed: int):
    """Seed torch inside a forked RNG with one thread (reductions then never reorder)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


@dataclasses.dataclass
class ArticleRun:
    """A trained article model with the data it was trained on and its loss per epoch."""

    model: nn.Module
    inputs: torch.Tensor
    labels: torch.Tensor
    losses: list[float]


def train_article(cls=SimpleModel, seed: int = 0) -> ArticleRun:
    """Train ``SimpleModel`` or ``AcceleratedModel`` exactly as the article does."""
    if cls not in (SimpleModel, AcceleratedModel):
        raise TypeError(f"cls must be SimpleModel or AcceleratedModel, not {cls!r}")
    with deterministic(seed):
        model = cls()
        criterion = nn.MSELoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=ARTICLE_LR)
        inputs = torch.randn(100, 10)
        labels = torch.randn(100, 1)
        losses = []
        for _ in range(ARTICLE_EPOCHS):
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return ArticleRun(model.eval(), inputs, labels, losses)


@dataclasses.dataclass
class DigitsData:
    """All 1797 digit images (scaled float32 ``[N, 64]``), labels and the fixed split."""

    inputs: torch.Tensor
    labels: torch.Tensor
    train_index: torch.Tensor
    test_index: torch.Tensor


def load_digits() -> DigitsData:
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    data = sk_load_digits()
    inputs = torch.tensor(data.data, dtype=torch.float32) / DIGITS_SCALE
    labels = torch.tensor(data.target, dtype=torch.int64)
    index = list(range(len(labels)))
    train, test = train_test_split(index, test_size=DIGITS_TEST_SIZE,
                                   random_state=DIGITS_SPLIT_SEED, stratify=data.target)
    return DigitsData(inputs, labels, torch.tensor(sorted(train)), torch.tensor(sorted(test)))


@dataclasses.dataclass
class DigitsRun:
    model: nn.Module
    data: DigitsData


def train_digits(seed: int = 0, data: DigitsData | None = None) -> DigitsRun:
    """Train the 64 -> 32 -> 10 MLP with Adam, full batch, cross-entropy."""
    data = load_digits() if data is None else data
    x = data.inputs[data.train_index]
    y = data.labels[data.train_index]
    with deterministic(seed):
        model = digits_mlp()
        optimizer = torch.optim.Adam(model.parameters(), lr=DIGITS_LR)
        criterion = nn.CrossEntropyLoss()
        for _ in range(DIGITS_EPOCHS):
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
    return DigitsRun(model.eval(), data)


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label."""
    if len(labels) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((scores.argmax(dim=1) == labels).double().mean())
