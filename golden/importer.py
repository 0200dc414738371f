"""Read a torch model as a chain of fully connected layers.

Accepted: an ``nn.Sequential``, or any module whose ``forward`` is a plain chain
(found with ``torch.fx``), of ``Linear``, ``ReLU``, ``Flatten``, ``Identity`` and
``Dropout``.  ``Flatten``, ``Identity`` and ``Dropout`` are identities at
inference (inputs are ``[batch, features]``; Dropout in eval mode).  A ``ReLU``
must directly follow a ``Linear`` (it becomes that layer's clamp); repeated
ReLUs are idempotent.  Everything else is refused with the layer index, its type
and the supported list.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

__all__ = ["SUPPORTED", "LinearSpec", "import_chain", "chain_modules"]

SUPPORTED = ("Linear", "ReLU", "Flatten", "Identity", "Dropout")
_PASS = (nn.Flatten, nn.Identity, nn.Dropout)
_RELU_FUNCTIONS = (torch.relu, torch.nn.functional.relu)


@dataclasses.dataclass(frozen=True)
class LinearSpec:
    """One fully connected layer in float64: ``weight [out, in]``, ``bias [out]`` (zeros if none)."""

    index: int
    weight: torch.Tensor
    bias: torch.Tensor
    has_bias: bool
    relu: bool

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]


def _unsupported(index: int, what: str) -> ValueError:
    return ValueError(f"layer {index} ({what}) is not supported; supported layers: {', '.join(SUPPORTED)}")


def _target_name(node) -> str:
    if node.op == "call_module":
        return type(node.graph.owning_module.get_submodule(node.target)).__name__
    return getattr(node.target, "__name__", str(node.target))


def chain_modules(model) -> list:
    """The model's layers in order: modules, or ``"relu"`` for a functional ReLU."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, not {type(model).__name__}")
    if isinstance(model, nn.Sequential):
        return list(model)
    if not any(True for _ in model.children()):
        return [model]  # a single layer given on its own
    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as e:  # fx raises many kinds; all mean "not a plain chain"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{type(model).__name__}: forward is not a plain chain of layers "
                         f"({reason}); supported layers: {', '.join(SUPPORTED)}") from None
    layers, previous = [], None
    for node in graph.nodes:
        if node.op == "placeholder":
            if previous is not None:
                raise ValueError(f"{type(model).__name__}: forward takes more than one input")
            previous = node
            continue
        index = len(layers)
        if node.op == "output":
            if node.args[0] is not previous:
                raise ValueError(f"{type(model).__name__}: forward does not return the end of its chain")
            break
        if list(node.all_input_nodes) != [previous]:
            raise ValueError(f"{type(model).__name__}: layer {index} ({_target_name(node)}) does not take the "
                             f"previous layer's output as its only input; only a plain chain is supported")
        if node.op == "call_module":
            layers.append(model.get_submodule(node.target))
        elif node.op == "call_function" and node.target in _RELU_FUNCTIONS:
            layers.append("relu")
        elif node.op == "call_method" and node.target in ("relu", "relu_"):
            layers.append("relu")
        else:
            raise _unsupported(index, _target_name(node))
        previous = node
    return layers


def import_chain(model) -> list[LinearSpec]:
    """Check ``model`` and return its Linear layers, each with its ReLU flag."""
    specs: list[LinearSpec] = []
    for index, layer in enumerate(chain_modules(model)):
        if layer == "relu" or type(layer) is nn.ReLU:
            if not specs:
                raise ValueError(f"layer {index} (ReLU) comes before any Linear layer; a ReLU must follow a Linear")
            specs[-1] = dataclasses.replace(specs[-1], relu=True)
        elif type(layer) in _PASS:
            continue
        elif type(layer) is nn.Linear:
            specs.append(_linear(index, layer, specs[-1] if specs else None))
        else:
            raise _unsupported(index, type(layer).__name__)
    if not specs:
        raise ValueError(f"{type(model).__name__} has no Linear layer; supported layers: {', '.join(SUPPORTED)}")
    return specs


def _linear(index: int, layer: nn.Linear, previous: LinearSpec | None) -> LinearSpec:
    where = f"layer {index} (Linear)"
    weight = layer.weight.detach().to(torch.float64)
    if weight.ndim != 2:
        raise ValueError(f"{where}: weight must be 2-D [out, in], not {list(weight.shape)}")
    out_f, in_f = weight.shape
    if out_f == 0 or in_f == 0:
        raise ValueError(f"{where}: zero-sized layer: weight shape [{out_f}, {in_f}] (in_features={in_f}, out_features={out_f})")
    if (out_f, in_f) != (layer.out_features, layer.in_features):
        raise ValueError(f"{where}: weight shape [{out_f}, {in_f}] does not match "
                         f"in_features={layer.in_features}, out_features={layer.out_features}")
    if not torch.isfinite(weight).all():
        bad = int((~torch.isfinite(weight)).sum())
        raise ValueError(f"{where}: weight has {bad} NaN or infinite values")
    if layer.bias is None:
        bias, has_bias = torch.zeros(out_f, dtype=torch.float64), False
    else:
        bias, has_bias = layer.bias.detach().to(torch.float64), True
        if list(bias.shape) != [out_f]:
            raise ValueError(f"{where}: bias shape {list(bias.shape)} does not match out_features={out_f}")
        if not torch.isfinite(bias).all():
            bad = int((~torch.isfinite(bias)).sum())
            raise ValueError(f"{where}: bias has {bad} NaN or infinite values")
    if previous is not None and previous.out_features != in_f:
        raise ValueError(f"{where}: in_features={in_f} does not match out_features={previous.out_features} "
                         f"of layer {previous.index} (Linear)")
    return LinearSpec(index, weight.clone(), bias.clone(), has_bias, False)
