"""Reproducible end-to-end benchmarks of Loadbay against baselines (`python -m bench`)."""
