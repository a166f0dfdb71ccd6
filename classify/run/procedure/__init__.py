"""A cell's inner procedure inside one training set: the hyper-parameter search, the
calibrator and decision threshold (operating point), and both re-run on a final training set.

Part of :mod:`classify.run` (same import rules).
"""
