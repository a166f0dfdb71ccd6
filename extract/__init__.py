"""Stage 1: turn chest X-ray images and report text into vectors with frozen encoders.

Nothing heavy happens at import time: torch/torchvision/transformers are imported
lazily inside the functions that need them (see :mod:`extract.torch_compat`).

Layout: :mod:`extract.options` (the one :class:`ExtractOptions` of a run),
:mod:`extract.encoders` (one module per encoder family, registries, store keys),
:mod:`extract.preprocess` (image decoding), :mod:`extract.texts` (report texts),
:mod:`extract.jobs` (the image/text parts of a run), :mod:`extract.runner` (the one
batch loop: :func:`extract.runner.run_extract`), :mod:`extract.distributed` (Dask shards).
"""
