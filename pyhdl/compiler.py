"""The model compiler: a model image + an array config -> the array's memory images.

Layout (docs/hardware.md): layer ``l`` with ``G = ceil(out/pe)`` groups and
``F = ceil(in/simd)`` folds occupies words ``bank_base[l] .. bank_base[l] + G*F - 1``
of every PE bank; PE ``p`` word ``bank_base + g*F + f`` lane ``s`` holds
``W[g*pe + p][f*simd + s]`` (0 out of range).  Requant entry ``rq_base[l] + g`` of
PE ``p`` holds bias/m/s of neuron ``g*pe + p``.  Layers are packed back to back
from word 0 / entry 0.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from golden import contract
from golden.image import ModelImage

from . import sizing
from .config import ArrayConfig

__all__ = ["Program", "compile_model", "MATCHING_WIDTHS"]


@dataclasses.dataclass(frozen=True)
class Program:
    """Everything the array needs to run one model.

    Members
    -------
    cfg : ArrayConfig
    shapes : list of (in_features, out_features)
    banks : list (per PE) of list of int
        Bank words from word 0 (lanes packed as in the load map).
    requant : list (per PE) of list of int
        Requant words from entry 0.
    descriptors : list of int
        Descriptor words, one per layer.
    load_words : list of (addr, data)
        The load-stream transfers in order.  The first writes ``n_layers = 0``, which
        closes the input until the last, which writes the model's ``n_layers``: input
        offered after the load has started waits for the whole program.
    """

    cfg: ArrayConfig
    shapes: list
    banks: list
    requant: list
    descriptors: list
    load_words: list

    def write_hex(self, directory) -> list[Path]:
        """Write ``$readmemh`` files: ``bank<p>.hex``, ``requant<p>.hex``, ``descriptors.hex``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []

        def emit(name, words, bits):
            digits = max(1, -(-bits // 4))
            path = directory / name
            path.write_text("".join(f"{w:0{digits}x}\n" for w in words))
            written.append(path)

        cfg = self.cfg
        for p in range(cfg.pe):
            emit(f"bank{p}.hex", self.banks[p], cfg.simd * cfg.w_bits)
            emit(f"requant{p}.hex", self.requant[p], sizing.rq_bits(cfg))
        emit("descriptors.hex", self.descriptors, sizing.descriptor_bits(cfg))
        return written


#: The widths an image's integers are written in: they must be the array's.  ``acc_bits``
#: is not one of them: an image records the accumulator it was proven against when it was
#: quantized, and the array may be narrower (the small config's 24 bits take the
#: built-in models' 32-bit images) or wider, as long as every layer's proof holds at the
#: array's width, which :func:`compile_model` checks layer by layer.
MATCHING_WIDTHS = ("w_bits", "a_bits", "m_bits")


def _check_fit(image: ModelImage, cfg: ArrayConfig):
    for name in MATCHING_WIDTHS:
        if getattr(image, name) != getattr(cfg, name):
            raise ValueError(f"model image {image.name!r} has {name}={getattr(image, name)}, "
                             f"the array has {name}={getattr(cfg, name)}")
    if len(image.layers) > cfg.max_layers:
        raise ValueError(f"model image {image.name!r} has {len(image.layers)} layers, "
                         f"the array holds max_layers={cfg.max_layers}")
    words = entries = 0
    for n, layer in enumerate(image.layers):
        for name in ("in_features", "out_features"):
            v = getattr(layer, name)
            if v > cfg.max_features:
                raise ValueError(f"layer {n}: {name}={v} exceeds max_features={cfg.max_features}")
        contract.check_accumulator(n, layer.in_features, layer.max_abs_weight, layer.max_abs_bias,
                                   cfg.a_bits, cfg.acc_bits)
        words += sizing.bank_words(layer.in_features, layer.out_features, cfg)
        if words > cfg.bank_depth:
            raise ValueError(f"layer {n}: weights need {words} words per PE bank up to this layer, "
                             f"bank_depth={cfg.bank_depth}")
        entries += sizing.groups(layer.out_features, cfg)
        if entries > sizing.rq_depth(cfg):
            raise ValueError(f"layer {n}: requant entries need {entries} per PE up to this layer, "
                             f"rq_depth={sizing.rq_depth(cfg)}")


def compile_model(image: ModelImage, cfg: ArrayConfig) -> Program:
    """Compile ``image`` for ``cfg``; ValueError naming the layer and the limit if it does not fit."""
    if not isinstance(image, ModelImage):
        raise TypeError(f"image must be a golden.image.ModelImage, not {type(image).__name__}")
    if not isinstance(cfg, ArrayConfig):
        raise TypeError(f"cfg must be an ArrayConfig, not {type(cfg).__name__}")
    _check_fit(image, cfg)
    P, S = cfg.pe, cfg.simd
    banks = [[] for _ in range(P)]
    requant = [[] for _ in range(P)]
    descriptors = []
    shapes = []
    for layer in image.layers:
        fin, fout = layer.in_features, layer.out_features
        G, F = sizing.groups(fout, cfg), sizing.folds(fin, cfg)
        descriptors.append(sizing.pack_descriptor(
            cfg, in_features=fin, out_features=fout, bank_base=len(banks[0]),
            rq_base=len(requant[0]), relu=int(layer.relu), requantize=int(layer.requantize)))
        shapes.append((fin, fout))
        for p in range(P):
            for g in range(G):
                j = g * P + p
                for f in range(F):
                    lanes = [layer.weight[j][f * S + s] if j < fout and f * S + s < fin else 0
                             for s in range(S)]
                    banks[p].append(sizing.pack_lanes(lanes, cfg.w_bits))
                if j < fout:
                    m, s = (layer.m[j], layer.s[j]) if layer.requantize else (0, 0)
                    requant[p].append(sizing.pack_requant(cfg, layer.bias[j], m, s))
                else:
                    requant[p].append(0)
    n_layers = sizing.load_address(sizing.REGION_CONTROL, 0, sizing.CONTROL_N_LAYERS)
    load = [(n_layers, 0)]
    for p in range(P):
        load += [(sizing.load_address(sizing.REGION_BANK, p, i), w) for i, w in enumerate(banks[p])]
        load += [(sizing.load_address(sizing.REGION_REQUANT, p, i), w) for i, w in enumerate(requant[p])]
    load += [(sizing.load_address(sizing.REGION_DESCRIPTOR, 0, i), w) for i, w in enumerate(descriptors)]
    load.append((n_layers, len(descriptors)))
    return Program(cfg, shapes, banks, requant, descriptors, load)
