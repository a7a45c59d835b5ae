"""Empirical harness: data, flow-matching models, training, sampling, metrics, sweeps."""
