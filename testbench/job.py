"""Job and results files: how data passes between the host and the cocotb test.

The host (``nmc sim``, pytest) compiles each model, picks inputs and traffic, and
writes one JSON *job* into the build directory; the cocotb test
(``testbench.cocotb_nmc``) reads it, runs every scenario against one simulator
process and writes a JSON *results* file back.  Many models share one process:
the program is reloaded between models.

Scenario kinds
--------------
``stream``    all inputs as one batch (split only where harness memories end), with
              the given idle/backpressure on the three streams;
``isolated``  one run per input vector, no stalls: the busy counter must equal the
              single-inference cycle formula exactly;
``reset``     a batch is started, reset is asserted ``reset_at`` cycles later (mid
              inference), then ``inputs`` run bit-exact, with the program reloaded
              (``reload``) or relying on it surviving the reset (weights, requant
              tables, descriptors and ``n_layers`` are not reset).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from golden.image import ModelImage
from pyhdl.config import ArrayConfig

from .harness import NO_STALL, StallSpec

__all__ = ["KINDS", "Scenario", "Job", "results_path"]

KINDS = ("stream", "isolated", "reset")
STREAMS = ("load", "input", "output")


@dataclasses.dataclass
class Scenario:
    model: int
    inputs: np.ndarray
    kind: str = "stream"
    stalls: dict = dataclasses.field(default_factory=dict)
    reset_at: int = 0
    tag: str = ""
    keep_outputs: bool = False  # return the RTL outputs in the results (for accuracy reports)
    reload: bool = True  # reset scenarios: reload the program after the reset (else it must survive)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"scenario kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        unknown = set(self.stalls) - set(STREAMS)
        if unknown:
            raise ValueError(f"stalls name unknown streams {sorted(unknown)}; streams are {', '.join(STREAMS)}")
        self.inputs = np.asarray(self.inputs, dtype=np.int64)

    def stall(self, stream: str) -> StallSpec:
        return self.stalls.get(stream, NO_STALL)

    def as_dict(self) -> dict:
        return {"model": self.model, "kind": self.kind, "tag": self.tag, "reset_at": self.reset_at,
                "keep_outputs": self.keep_outputs, "reload": self.reload,
                "inputs": self.inputs.tolist(),
                "stalls": {k: v.as_dict() for k, v in self.stalls.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "Scenario":
        return cls(model=d["model"], inputs=np.array(d["inputs"], dtype=np.int64).reshape(len(d["inputs"]), -1),
                   kind=d["kind"], stalls={k: StallSpec(**v) for k, v in d["stalls"].items()},
                   reset_at=d["reset_at"], tag=d["tag"], keep_outputs=d["keep_outputs"], reload=d["reload"])


@dataclasses.dataclass
class Model:
    name: str
    image: ModelImage
    load_words: list
    shapes: list

    def as_dict(self) -> dict:
        return {"name": self.name, "image": self.image.to_dict(),
                "load_words": [[int(a), format(int(d), "x")] for a, d in self.load_words],
                "shapes": [list(s) for s in self.shapes]}

    @classmethod
    def from_dict(cls, d: dict) -> "Model":
        image = ModelImage.from_dict(d["image"], source=f"job model {d['name']}")
        return cls(d["name"], image, [(a, int(h, 16)) for a, h in d["load_words"]],
                   [tuple(s) for s in d["shapes"]])


@dataclasses.dataclass
class Job:
    cfg: ArrayConfig
    models: list = dataclasses.field(default_factory=list)
    scenarios: list = dataclasses.field(default_factory=list)
    max_cycles_per_vector: int = 0  # 0: derived from the model sizes

    def add_model(self, name: str, image: ModelImage, program) -> int:
        """Add a compiled model (``program`` from ``pyhdl.compiler.compile_model``); return its index."""
        self.models.append(Model(name, image, list(program.load_words), list(program.shapes)))
        return len(self.models) - 1

    def add(self, model: int, inputs, kind: str = "stream", *, stalls=None, reset_at: int = 0, tag: str = "",
            keep_outputs: bool = False, reload: bool = True) -> Scenario:
        if not 0 <= model < len(self.models):
            raise ValueError(f"scenario names model {model}, but the job has {len(self.models)}")
        sc = Scenario(model, inputs, kind, dict(stalls or {}), reset_at, tag, keep_outputs, reload)
        if sc.inputs.ndim != 2 or sc.inputs.shape[1] != self.models[model].image.in_features or not len(sc.inputs):
            raise ValueError(f"scenario inputs must have shape [n >= 1, {self.models[model].image.in_features}], "
                             f"not {list(sc.inputs.shape)}")
        self.scenarios.append(sc)
        return sc

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"cfg": self.cfg.as_dict(), "models": [m.as_dict() for m in self.models],
                "scenarios": [s.as_dict() for s in self.scenarios],
                "max_cycles_per_vector": self.max_cycles_per_vector}
        path.write_text(json.dumps(body, separators=(",", ":")))
        return path

    @classmethod
    def load(cls, path) -> "Job":
        d = json.loads(Path(path).read_text())
        return cls(ArrayConfig(**d["cfg"]), [Model.from_dict(m) for m in d["models"]],
                   [Scenario.from_dict(s) for s in d["scenarios"]], d["max_cycles_per_vector"])


def results_path(job_path) -> Path:
    p = Path(job_path)
    return p.with_name(p.stem + ".results.json")
