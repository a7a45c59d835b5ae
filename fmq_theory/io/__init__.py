"""Files: bit packing, float checkpoints loaded safely, and the quantized file format.

- :mod:`.packing` — codes of 1..8 bits packed into bytes (numba kernels with numpy twins).
- :mod:`.float_checkpoint` — a float state dict from safetensors or, without unpickling
  code, from a torch pickle.
- :mod:`.quantized_file` — save, load and inspect a bit-packed quantized state dict.
"""
