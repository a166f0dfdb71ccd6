"""What a run produces: typed frozen results, the fold metrics and the on-disk cell store.

The bottom floor of classify: imports only :mod:`pipeline` (and the standard library,
numpy, pandas, scikit-learn).
"""
