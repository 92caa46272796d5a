"""Batch samplers for hybrid-batch training."""

from hybrid_sweep.sampling.hybrid import Batch, BatchItem, HybridBatchSampler, ordered_pairs

__all__ = ["Batch", "BatchItem", "HybridBatchSampler", "ordered_pairs"]
