"""atst-hear: ATST-Clip, ATST-Frame and ATST-C2F for HEAR embeddings, pre-training and benchmarks."""

__version__ = "0.1.0"
