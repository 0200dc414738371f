"""The built-in models (used by ``make sim``, ``nmc report`` and the tests) and model files.

``default_models(seed)`` trains and quantizes, deterministically, in a few seconds:

* ``simple`` / ``accelerated`` — the article's models; inputs are the 100
  training inputs followed by 100 fresh ``torch.randn`` inputs drawn from seed
  ``seed + FRESH_SEED_OFFSET``; calibrated on the training inputs.
* ``digits`` — the 64 -> 32 -> 10 MLP; inputs are all 1797 images (scaled as in
  training), targets their labels, ``test_index`` the fixed test split;
  calibrated on the training split.

``entry_from_file(path)`` reads a model image (JSON) or a ``torch.save``-d model.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from . import image as image_mod
from . import integer, train
from .image import ModelImage
from .importer import import_chain
from .models import AcceleratedModel, SimpleModel
from .quantize import quantize_model

__all__ = ["ZooEntry", "default_models", "entry_from_file", "random_integer_inputs", "FRESH_SEED_OFFSET"]

#: The fresh (unseen) article inputs come from ``torch.manual_seed(seed + FRESH_SEED_OFFSET)``.
FRESH_SEED_OFFSET = 1000


@dataclasses.dataclass
class ZooEntry:
    """One model to run: the float model (if any), its image and the vectors to run.

    ``x_q`` is ``golden.integer.quantize_input(image, inputs)`` (int64 ``[N, in]``);
    ``targets`` are class labels ``[N]`` for classification, else None;
    ``test_index`` (classification only) selects the held-out rows of ``inputs``.
    """

    name: str
    kind: str
    model: nn.Module | None
    image: ModelImage
    inputs: torch.Tensor
    x_q: torch.Tensor
    targets: torch.Tensor | None = None
    test_index: torch.Tensor | None = None


def _article_entry(name: str, cls, seed: int) -> ZooEntry:
    run = train.train_article(cls, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + FRESH_SEED_OFFSET)
        fresh = torch.randn(100, 10)
    inputs = torch.cat([run.inputs, fresh])
    image = quantize_model(run.model, run.inputs, name=name)
    return ZooEntry(name, "regression", run.model, image, inputs, integer.quantize_input(image, inputs))


def default_models(seed: int = 0) -> list[ZooEntry]:
    """``simple``, ``accelerated`` and ``digits``, trained and quantized from ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, not {seed!r}")
    entries = [_article_entry("simple", SimpleModel, seed), _article_entry("accelerated", AcceleratedModel, seed)]
    run = train.train_digits(seed)
    data = run.data
    image = quantize_model(run.model, data.inputs[data.train_index], name="digits")
    entries.append(ZooEntry("digits", "classification", run.model, image, data.inputs,
                            integer.quantize_input(image, data.inputs), data.labels, data.test_index))
    return entries


def random_integer_inputs(image: ModelImage, n: int, seed: int) -> torch.Tensor:
    """``n`` uniformly random activations in the ``a_bits`` range, int64 ``[n, in]``."""
    from . import contract

    lo, hi = contract.activation_range(image.a_bits)
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(lo, hi + 1, (n, image.in_features), generator=gen, dtype=torch.int64)


def entry_from_file(path, n_vectors: int = 100, seed: int = 0) -> ZooEntry:
    """A model image JSON or a ``torch.save(model)`` file as a :class:`ZooEntry`.

    A model image gets ``n_vectors`` random in-range integer inputs (its ``inputs``
    are those integers times ``input_scale``); a torch model is quantized with
    ``n_vectors`` seeded ``torch.randn`` calibration inputs, which are also the
    vectors to run.  Every problem is a one-line ValueError naming the file.
    """
    if isinstance(n_vectors, bool) or not isinstance(n_vectors, int) or n_vectors < 1:
        raise ValueError(f"n_vectors must be an integer >= 1, not {n_vectors!r}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {path} does not exist" if not path.exists() else f"model file {path} is not a file")
    head = path.read_bytes()[:64].lstrip()
    name = path.stem
    if head.startswith(b"{"):
        image = image_mod.load(path)
        x_q = random_integer_inputs(image, n_vectors, seed)
        return ZooEntry(image.name, "regression", None, image, x_q.to(torch.float64) * image.input_scale, x_q)
    model = _load_torch(path)
    try:
        spec = import_chain(model)
    except (TypeError, ValueError) as e:
        raise ValueError(f"model file {path}: {e}") from None
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n_vectors, spec[0].in_features, generator=gen)
    try:
        image = quantize_model(model, inputs, name=name)
    except (TypeError, ValueError) as e:
        raise ValueError(f"model file {path}: {e}") from None
    return ZooEntry(name, "regression", model.eval(), image, inputs, integer.quantize_input(image, inputs))


def _load_torch(path: Path) -> nn.Module:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, AttributeError,
            ModuleNotFoundError, ImportError, ValueError, TypeError, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"model file {path} is not a readable torch file or model image: {reason}") from None
    if isinstance(obj, dict):
        raise ValueError(f"model file {path} holds a dict (a state_dict?), not a model; save it with torch.save(model)")
    if not isinstance(obj, nn.Module):
        raise ValueError(f"model file {path} holds a {type(obj).__name__}, not a torch.nn.Module")
    return obj
