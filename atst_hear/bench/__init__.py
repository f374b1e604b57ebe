"""Benchmarking: HEAR task folders, dataset converters, embedding cache, protocols, reports."""
