"""``nmc report``: float vs integer golden for the built-in models (or a model file)."""

from __future__ import annotations

import json
from pathlib import Path

HELP = "float vs integer golden per model: digits accuracy, seed models' MSE"


def add_arguments(parser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="training seed of the built-in models (default 0)")
    parser.add_argument("--model", metavar="FILE", action="append", default=[],
                        help="also report a model image (.json) or torch.save-d model; repeatable")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON to FILE")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: list[dict]) -> str:
    head = ("model", "kind", "vectors", "shape", "w/a/acc/m", "last", "float acc", "int acc", "MSE", "check")
    lines = [head]
    for r in rows:
        b = r["bits"]
        ok = r.get("ok")
        lines.append((
            r["name"], r["kind"], str(r["vectors"]), "-".join(map(str, r["shape"])),
            f"{b['w']}/{b['a']}/{b['acc']}/{b['m']}", r["last_layer"],
            _fmt(r.get("float_accuracy"), ".2%"), _fmt(r.get("int_accuracy"), ".2%"),
            _fmt(r.get("mse"), ".3e"), "-" if ok is None else ("ok" if ok else "FAIL"),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def run(args) -> int:
    from golden import report, zoo

    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, not {args.seed}")
    if args.json is not None and Path(args.json).is_dir():
        raise ValueError(f"--json {args.json} is a directory, expected a file name")
    entries = [zoo.entry_from_file(path, seed=args.seed) for path in args.model]
    entries = zoo.default_models(args.seed) + entries
    rows = [report.evaluate(e) for e in entries]
    print(format_table(rows))
    if args.json is not None:
        try:
            Path(args.json).write_text(json.dumps({"seed": args.seed, "models": rows}, indent=2) + "\n")
        except OSError as e:
            raise ValueError(f"cannot write --json {args.json}: {e.strerror}") from None
    failed = [r["name"] for r in rows if r.get("ok") is False]
    if failed:
        print(f"nmc report: thresholds not met by: {', '.join(failed)}")
        return 1
    return 0
