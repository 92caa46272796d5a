"""Hybrid-batch contrastive training: loss, GradCache, distributed helpers and the recipe."""
