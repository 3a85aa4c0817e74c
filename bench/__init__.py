"""Benchmarks: one script per figure, each exposing ``run(...) -> dict``; ``python -m bench.run`` runs them all."""
