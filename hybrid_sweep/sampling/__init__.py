"""Batch samplers for hybrid-batch training."""

from hybrid_sweep.sampling.hybrid import Batch, BatchItem, HybridBatchSampler
from hybrid_sweep.sampling.pairs import active_pairs, ordered_pairs, unordered_pairs

__all__ = ["Batch", "BatchItem", "HybridBatchSampler", "active_pairs", "ordered_pairs", "unordered_pairs"]
