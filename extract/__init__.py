"""Stage 1: turn chest X-ray images and report text into vectors with frozen encoders.

Nothing heavy happens at import time: torch/torchvision/transformers are imported
lazily inside the functions that need them (see :mod:`extract.torch_compat`).

Public entry points:

- :func:`extract.runner.run_extract` - embed a manifest into a feature store.
- :data:`extract.image_encoders.IMAGE_ENCODERS` / :data:`extract.text_encoders.TEXT_ENCODERS`
  - registries of encoders (``pipeline list`` shows them).
"""
