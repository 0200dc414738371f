"""The model image: a quantized MLP as plain integers, in a documented JSON file.

It is what the hardware compiler consumes and what anyone else can read
(``docs/quantization.md`` describes every field).  A file looks like::

    {"format": "nmc-model-image", "version": 1, "name": "digits",
     "w_bits": 8, "a_bits": 8, "acc_bits": 32, "m_bits": 16,
     "input_scale": 0.0123,
     "layers": [{"in_features": 64, "out_features": 32,
                 "weight": [[...64 ints...], ...32 rows...], "bias": [...32 ints...],
                 "m": [...], "s": [...], "relu": true, "requantize": true,
                 "weight_scale": [...], "output_scale": 0.05}, ...],
     "sha256": "<hex digest of the canonical JSON of every other field>"}

``requantize`` false means the layer outputs its raw accumulator (bias included);
its ``m``/``s``/``output_scale`` are then ignored (stored as ``[]``/``[]``/``null``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from pathlib import Path

from . import contract

__all__ = ["FORMAT", "VERSION", "LayerImage", "ModelImage", "load", "save"]

FORMAT = "nmc-model-image"
VERSION = 1


def _int_list(where: str, value, length: int, lo: int, hi: int) -> list[int]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where} must be a list of {length} integers, not {type(value).__name__}")
    if len(value) != length:
        raise ValueError(f"{where} has {len(value)} entries, expected {length}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ValueError(f"{where}[{i}] must be an integer, not {v!r}")
        if not lo <= v <= hi:
            raise ValueError(f"{where}[{i}] = {v} is outside {lo}..{hi}")
        out.append(int(v))
    return out


def _scale(where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where} must be a finite number > 0, not {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class LayerImage:
    """One fully connected layer in integers.  ``weight[j][i]`` is output ``j``, input ``i``."""

    in_features: int
    out_features: int
    weight: tuple[tuple[int, ...], ...]
    bias: tuple[int, ...]
    m: tuple[int, ...]
    s: tuple[int, ...]
    relu: bool
    requantize: bool
    weight_scale: tuple[float, ...]
    output_scale: float | None

    @property
    def max_abs_weight(self) -> int:
        return max((abs(w) for row in self.weight for w in row), default=0)

    @property
    def max_abs_bias(self) -> int:
        return max((abs(b) for b in self.bias), default=0)


@dataclasses.dataclass(frozen=True)
class ModelImage:
    """A quantized MLP; construct through :meth:`from_dict` (which checks everything) or :func:`load`."""

    name: str
    w_bits: int
    a_bits: int
    acc_bits: int
    m_bits: int
    input_scale: float
    layers: tuple[LayerImage, ...]

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    # -- serialisation -------------------------------------------------
    def to_dict(self) -> dict:
        body = {
            "format": FORMAT, "version": VERSION, "name": self.name,
            "w_bits": self.w_bits, "a_bits": self.a_bits, "acc_bits": self.acc_bits, "m_bits": self.m_bits,
            "input_scale": self.input_scale,
            "layers": [{
                "in_features": l.in_features, "out_features": l.out_features,
                "weight": [list(r) for r in l.weight], "bias": list(l.bias),
                "m": list(l.m), "s": list(l.s), "relu": l.relu, "requantize": l.requantize,
                "weight_scale": list(l.weight_scale), "output_scale": l.output_scale,
            } for l in self.layers],
        }
        body["sha256"] = _digest(body)
        return body

    @classmethod
    def from_dict(cls, data, *, source: str = "model image") -> "ModelImage":
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, found {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise ValueError(f"{source}: not an nmc model image (format is {data.get('format')!r}, expected {FORMAT!r})")
        if data.get("version") != VERSION:
            raise ValueError(f"{source}: unsupported version {data.get('version')!r} (this nmc reads version {VERSION})")
        if "sha256" in data:
            body = {k: v for k, v in data.items() if k != "sha256"}
            if _digest(body) != data["sha256"]:
                raise ValueError(f"{source}: checksum mismatch: the file is corrupt or was edited by hand "
                                 f"(remove the 'sha256' field to accept hand edits)")
        try:
            w_bits = contract.check_bits("w_bits", data.get("w_bits"), *contract.BITS_RANGE)
            a_bits = contract.check_bits("a_bits", data.get("a_bits"), *contract.BITS_RANGE)
            acc_bits = contract.check_bits("acc_bits", data.get("acc_bits"), *contract.ACC_BITS_RANGE)
            m_bits = contract.check_bits("m_bits", data.get("m_bits"), *contract.M_BITS_RANGE)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: {e}") from None
        input_scale = _scale(f"{source}: input_scale", data.get("input_scale"))
        raw_layers = data.get("layers")
        if not isinstance(raw_layers, list) or not raw_layers:
            raise ValueError(f"{source}: 'layers' must be a non-empty list")
        wlo, whi = contract.weight_range(w_bits)
        alo, ahi = contract.accumulator_range(acc_bits)
        layers = []
        for n, raw in enumerate(raw_layers):
            where = f"{source}: layer {n}"
            if not isinstance(raw, dict):
                raise ValueError(f"{where} must be an object")
            fin, fout = raw.get("in_features"), raw.get("out_features")
            for name, v in (("in_features", fin), ("out_features", fout)):
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise ValueError(f"{where}: {name} must be an integer >= 1, not {v!r}")
            if layers and fin != layers[-1].out_features:
                raise ValueError(f"{where}: in_features={fin} does not match out_features={layers[-1].out_features} of layer {n - 1}")
            weight = raw.get("weight")
            if not isinstance(weight, list) or len(weight) != fout:
                raise ValueError(f"{where}: weight must have {fout} rows")
            rows = tuple(tuple(_int_list(f"{where}: weight[{j}]", r, fin, wlo, whi)) for j, r in enumerate(weight))
            bias = tuple(_int_list(f"{where}: bias", raw.get("bias"), fout, alo, ahi))
            requant = raw.get("requantize")
            relu = raw.get("relu")
            if not isinstance(requant, bool) or not isinstance(relu, bool):
                raise ValueError(f"{where}: 'relu' and 'requantize' must be true or false")
            if relu and not requant:
                raise ValueError(f"{where}: a ReLU needs requantization (relu=true, requantize=false)")
            if requant:
                m = tuple(_int_list(f"{where}: m", raw.get("m"), fout, 0, 2**m_bits - 1))
                s = tuple(_int_list(f"{where}: s", raw.get("s"), fout, 1, contract.SHIFT_MAX))
                out_scale = _scale(f"{where}: output_scale", raw.get("output_scale"))
            else:
                m, s, out_scale = (), (), None
            wscale = raw.get("weight_scale")
            if not isinstance(wscale, list) or len(wscale) != fout:
                raise ValueError(f"{where}: weight_scale must have {fout} entries")
            wscale = tuple(_scale(f"{where}: weight_scale[{j}]", v) for j, v in enumerate(wscale))
            layer = LayerImage(fin, fout, rows, bias, m, s, relu, requant, wscale, out_scale)
            try:
                contract.check_accumulator(n, fin, layer.max_abs_weight, layer.max_abs_bias, a_bits, acc_bits)
            except ValueError as e:
                raise ValueError(f"{source}: {e}") from None
            layers.append(layer)
        for n, l in enumerate(layers[:-1]):
            if not l.requantize:
                raise ValueError(f"{source}: layer {n} outputs a raw accumulator but feeds layer {n + 1}; only the last layer may be raw")
        name = data.get("name", "model")
        if not isinstance(name, str):
            raise ValueError(f"{source}: name must be a string")
        return cls(name, w_bits, a_bits, acc_bits, m_bits, input_scale, tuple(layers))


def _digest(body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def save(image: ModelImage, path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(image.to_dict(), separators=(",", ":")) + "\n")
    return path


def load(path) -> ModelImage:
    """Read and check a model image; every problem is a ValueError naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"cannot read model image {path}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"model image {path} is truncated or corrupt: {e.msg} at line {e.lineno} column {e.colno}") from None
    return ModelImage.from_dict(data, source=f"model image {path}")
