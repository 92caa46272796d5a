"""Analysis of a results root: tables with confidence intervals, scaling fits, paired tests, figures."""
