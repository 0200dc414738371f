"""Float vs integer golden, per model: the numbers of ``nmc report``.

Classification: float and integer accuracy on the test split (the integer
prediction is the arg-max of the dequantized output, see
:func:`golden.quantize.predict_classes`).  Regression: mean squared error of the
dequantized integer output against the float output, over every vector.
"""

from __future__ import annotations

import torch

from . import integer
from .quantize import dequantize_output, predict_classes
from .zoo import ZooEntry

__all__ = ["DIGITS_MIN_FLOAT_ACCURACY", "MAX_ACCURACY_DROP", "evaluate"]

#: Thresholds the digits model must meet (issue 2): float test accuracy and the
#: largest drop from float to integer (int8), as fractions.
DIGITS_MIN_FLOAT_ACCURACY = 0.95
MAX_ACCURACY_DROP = 0.01


def evaluate(entry: ZooEntry) -> dict:
    """A JSON-ready summary of one model: shapes, vectors and float-vs-integer numbers."""
    image = entry.image
    y_int = integer.infer(image, entry.x_q)[-1]
    row = {
        "name": entry.name, "kind": entry.kind, "vectors": int(entry.x_q.shape[0]),
        "layers": len(image.layers),
        "shape": [image.in_features] + [l.out_features for l in image.layers],
        "bits": {"w": image.w_bits, "a": image.a_bits, "acc": image.acc_bits, "m": image.m_bits},
        "last_layer": "requantized" if image.layers[-1].requantize else "raw",
    }
    if entry.model is None:
        return row
    with torch.no_grad():
        y_float = entry.model(entry.inputs.to(next(entry.model.parameters()).dtype)).to(torch.float64)
    if entry.kind == "classification":
        test = entry.test_index if entry.test_index is not None else torch.arange(len(entry.targets))
        labels = entry.targets[test]
        float_acc = float((y_float[test].argmax(dim=1) == labels).double().mean())
        int_acc = float((predict_classes(image, y_int[test]) == labels).double().mean())
        row.update(test_vectors=int(len(test)), float_accuracy=float_acc, int_accuracy=int_acc,
                   accuracy_drop=float_acc - int_acc)
        if entry.name == "digits":
            row["ok"] = (float_acc >= DIGITS_MIN_FLOAT_ACCURACY
                         and float_acc - int_acc <= MAX_ACCURACY_DROP)
    else:
        y_deq = dequantize_output(image, y_int)
        row.update(mse=float(((y_deq - y_float) ** 2).mean()),
                   float_output_variance=float(y_float.var()) if y_float.numel() > 1 else 0.0)
    return row
