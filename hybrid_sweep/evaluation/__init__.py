"""Pooled-retrieval evaluation: exact search, tie-stable ranking, trec_eval-equal metrics."""
