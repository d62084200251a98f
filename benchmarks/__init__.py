"""Benchmarks of adljax against hand-written Flax + Optax and PyTorch (see README.md)."""
