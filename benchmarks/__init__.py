"""Speed and memory benchmarks of the pipeline, reported as ratios measured in one run.

``python -m benchmarks`` (``make bench``) runs all of them and writes CSV + Markdown
tables under ``artifacts/bench/``; ``--quick`` is a ~2-3 minute smoke run. Modules:

- :mod:`benchmarks.image_extract` - images/s vs forward-only limit and naive loop
- :mod:`benchmarks.text_extract` - reports/s with length-sorted batching vs pad-to-max
- :mod:`benchmarks.classify_grid` - grid wall time, parallel efficiency, re-run cost
- :mod:`benchmarks.memory` - peak RSS at 1x/2x/4x (subprocesses)
- :mod:`benchmarks.scale_model` - projected wall time for 10k-1M items

Nothing runs at import time.
"""
