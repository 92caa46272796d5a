"""hybrid_sweep: sweeps for hybrid-batch multilingual dense retrieval."""

__version__ = "0.1.0"
