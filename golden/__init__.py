"""Golden side of nmc: torch models, quantization, integer inference and model images.

Simulator-free: importing it never needs Amaranth, cocotb or Verilator.

* ``contract``  — the integer rules (ranges, accumulator proof, requantization);
* ``image``     — the model image (checked dataclasses + JSON file);
* ``integer``   — integer golden inference, every layer's outputs;
* ``models``, ``train`` — the article's models and the digits MLP, trained deterministically;
* ``importer``, ``quantize`` — torch chain -> model image, and back to float;
* ``zoo``       — the built-in models and model files as ready-to-run entries;
* ``randmodel`` — random and corner images for co-simulation;
* ``report``    — float vs integer numbers behind ``nmc report``.
"""
