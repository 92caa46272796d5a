"""Benchmarks and training data: LAReQA files, the synthetic generator, pooled-retrieval qrels."""

from hybrid_sweep.data.benchmark import Benchmark, Candidate, LanguageData, Pool, Question

__all__ = ["Benchmark", "Candidate", "LanguageData", "Pool", "Question"]
