"""nmc: near-memory MAC array for quantized MLP inference."""
