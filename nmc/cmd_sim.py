"""``nmc sim``: co-simulate models on the array (cocotb + Verilator), bit-exact against the golden.

Default job (``make sim``): the article's ``simple`` and ``accelerated`` models
(100 training + 100 fresh inputs each) and the digits MLP (all 1797 images) on the
default 8x8 int8 array.  ``--model FILE`` runs a saved torch model or model image
instead.  Every input is checked before the simulator starts; any mismatch gives a
non-zero exit status.  ``WAVES=1`` records a VCD in the build directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HELP = "co-simulate models on the RTL array, bit-exact against the golden model"

#: Scoreboard findings (the outputs themselves are wrong, missing or extra).
DATA_ERRORS = ("MISMATCH", "LOST", "UNEXPECTED", "X/Z", "LEFT OVER", "TIMEOUT")


def add_arguments(parser) -> None:
    from pyhdl.config import DEFAULT
    parser.add_argument("--model", metavar="FILE", help="a torch.save()d model or a model image (JSON) instead of the built-in models")
    parser.add_argument("--inputs", metavar="FILE",
                        help="integer activations for --model, [N, in_features]: .npy, .json (list of lists) or .csv")
    parser.add_argument("--vectors", type=int, default=100, help="random vectors for --model without --inputs (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="training / input seed (default 0)")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    for name in ("pe", "simd", "w_bits", "a_bits", "acc_bits", "m_bits", "bank_depth", "max_layers", "max_features"):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=int, default=getattr(DEFAULT, name),
                            help=f"array parameter (default {getattr(DEFAULT, name)})")
    parser.add_argument("--quick-build", action="store_true",
                        help="compile the simulator for build time (C++ -Os) instead of speed (-O2)")
    parser.add_argument("--json", metavar="FILE", help="also write the per-model results as JSON")


def _config(args):
    from pyhdl.config import DEFAULT
    return DEFAULT.replace(**{k: getattr(args, k) for k in (
        "pe", "simd", "w_bits", "a_bits", "acc_bits", "m_bits", "bank_depth", "max_layers", "max_features")})


def read_inputs(path, image):
    """Integer activations from ``.npy``, ``.json`` or ``.csv``, checked against the image."""
    import torch

    from golden import integer
    path = Path(path)
    try:
        if path.suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        elif path.suffix == ".json":
            data = np.array(json.loads(path.read_text()))
        elif path.suffix == ".csv":
            data = np.loadtxt(path, delimiter=",", ndmin=2)
        else:
            raise ValueError(f"inputs file {path} must end in .npy, .json or .csv")
    except (OSError, ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"inputs file {path} is unreadable: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if data.dtype == object or data.ndim != 2:
        raise ValueError(f"inputs file {path} must hold a 2-D table [N, {image.in_features}], not shape {list(data.shape)}")
    if data.dtype.kind == "f":
        if not np.all(np.isfinite(data)) or not np.all(data == np.round(data)):
            raise ValueError(f"inputs file {path} holds non-integer values; give quantized integer activations")
        data = data.astype(np.int64)
    if data.dtype.kind not in "iu" or not len(data):
        raise ValueError(f"inputs file {path} must hold at least one row of integers")
    try:
        return integer.check_input(image, torch.as_tensor(data.astype(np.int64)))
    except (TypeError, ValueError) as e:
        raise ValueError(f"inputs file {path}: {e}") from None


def _entries(args):
    from golden import zoo
    if args.model is None:
        if args.inputs is not None:
            raise ValueError("--inputs needs --model")
        return zoo.default_models(args.seed)
    entry = zoo.entry_from_file(args.model, n_vectors=args.vectors, seed=args.seed)
    if args.inputs is not None:
        x_q = read_inputs(args.inputs, entry.image)
        entry = zoo.ZooEntry(entry.name, "integer", None, entry.image, None, x_q)
    return [entry]


def _quality(entry, rtl: np.ndarray, golden_out: np.ndarray) -> list[str]:
    """Accuracy (classification) or MSE against the float model (regression)."""
    import torch

    from golden.quantize import dequantize_output, predict_classes
    if entry.model is None:
        return []
    with torch.no_grad():
        flt = entry.model.eval()(entry.inputs.to(torch.float32)).to(torch.float64)
    if entry.kind == "classification":
        targets = entry.targets
        preds = {"float": flt.argmax(dim=1), "golden": predict_classes(entry.image, torch.as_tensor(golden_out)),
                 "RTL": predict_classes(entry.image, torch.as_tensor(rtl))}
        lines = []
        for label, rows in (("test split", entry.test_index), ("all", torch.arange(len(targets)))):
            acc = {k: float((p[rows] == targets[rows]).double().mean()) * 100 for k, p in preds.items()}
            lines.append(f"accuracy ({label}, {len(rows)}): " + " / ".join(f"{k} {v:.2f} %" for k, v in acc.items()))
        return lines
    mse = {k: float(((dequantize_output(entry.image, torch.as_tensor(y)) - flt) ** 2).mean())
           for k, y in (("golden", golden_out), ("RTL", rtl))}
    return ["MSE of the dequantized output vs float: " + " / ".join(f"{k} {v:.3g}" for k, v in mse.items())]


def run(args) -> int:
    import torch

    from golden import integer
    from pyhdl import compiler, sizing
    from testbench.job import Job
    from testbench.runner import Simulation

    cfg = _config(args)
    entries = _entries(args)
    # Everything is checked before the simulator starts.
    job = Job(cfg)
    plan = []
    for entry in entries:
        x_q = integer.check_input(entry.image, entry.x_q)
        program = compiler.compile_model(entry.image, cfg)
        m = job.add_model(entry.name, entry.image, program)
        job.add(m, x_q[:1].numpy(), "isolated", tag=f"{entry.name}/isolated")
        job.add(m, x_q.numpy(), "stream", tag=f"{entry.name}/all", keep_outputs=True)
        plan.append((entry, x_q, program))

    sim = Simulation(cfg, simulator=args.simulator, fast_sim=not args.quick_build)
    sim.build()
    print(f"nmc sim: array {cfg.name} ({cfg.pe} PE x {cfg.simd} SIMD, w{cfg.w_bits}/a{cfg.a_bits}, acc {cfg.acc_bits}) "
          f"on {args.simulator}; build {sim.build_seconds:.1f} s in {sim.build_dir}")
    res = sim.run(job, name="sim")
    scenarios = {sc["tag"]: sc for sc in res["scenarios"]}
    report, failed = [], False
    for entry, x_q, program in plan:
        iso, allv = scenarios[f"{entry.name}/isolated"], scenarios[f"{entry.name}/all"]
        errors = iso["errors"] + allv["errors"]
        data_errors = [e for e in errors if e.startswith(DATA_ERRORS)]
        exact = not data_errors and allv["outputs_checked"] == len(x_q) * entry.image.out_features
        check_errors = [e for e in errors if e not in data_errors]
        failed |= not exact or bool(check_errors)
        ideal = sizing.ideal_cycles(program.shapes, cfg)
        single = iso["busy_cycles"]
        b2b = allv["busy_cycles"] / len(x_q)
        rate = len(x_q) / allv["wall_s"]
        print(f"\n{entry.name}: {len(x_q)} vectors, bit-exact: {'yes' if exact else 'NO'}")
        if exact:
            golden_out = integer.infer(entry.image, x_q)[-1].numpy()
            rtl = np.array(allv["outputs"], dtype=np.int64).reshape(len(x_q), -1)
            for line in _quality(entry, rtl, golden_out):
                print("  " + line)
        print(f"  cycles per inference: {single} isolated, {b2b:.2f} back to back; ideal {ideal} "
              f"-> utilisation {100 * ideal / single:.1f} % / {100 * ideal / b2b:.1f} %")
        print(f"  simulated and verified: {len(x_q)} inferences in {allv['wall_s']:.3f} s = {rate:,.0f} inferences/s")
        print("  counters and timing vs pyhdl.sizing: " + ("ok" if not check_errors else
              f"{len(check_errors)} deviation(s), first: {check_errors[0]}"))
        for e in data_errors[:1]:
            print("  " + e.replace("\n", "\n  "))
        report.append({"model": entry.name, "vectors": len(x_q), "bit_exact": exact, "ideal_cycles": ideal,
                       "isolated_cycles": single, "back_to_back_cycles": b2b, "inferences_per_s": rate,
                       "errors": errors})
    print(f"\nsimulator process {res['process_s']:.1f} s (setup {res['setup_s']:.1f} s); log {res['log']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": cfg.as_dict(), "models": report}, indent=1))
    if failed:
        print("nmc sim: FAILED: the RTL is not bit-exact or deviates from the cycle/counter formulas (see above)")
        return 1
    return 0
