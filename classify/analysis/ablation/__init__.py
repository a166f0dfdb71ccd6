"""Which modality or block matters: the modality ablation (single vs fused, the shuffle test)
and the block-subset ablation (every fused cell against its cells on subsets of its blocks).

Part of :mod:`classify.analysis` (same import rules).
"""
