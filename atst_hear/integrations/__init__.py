"""ATST models in the shapes other evaluation suites expect (docs/interop.md).

* :class:`~atst_hear.integrations.modules.FrameEmbeddings`: a plain ``torch.nn.Module`` whose
  ``forward`` maps ``[B, N]`` audio at 16 kHz to ``[B, T, D]`` frame embeddings (40 ms hop);
* :class:`~atst_hear.integrations.xares.ATSTXaresEncoder`: X-ARES's encoder contract
  (``sampling_rate``, ``output_dim``, ``hop_size_in_ms``, ``forward`` -> ``[B, T, D]``);
* :class:`~atst_hear.integrations.evar.AR_ATST_HEAR`: EVAR's audio-representation plug-in
  (``AR_*(cfg)`` with ``precompute``, ``encode_frames`` and ``forward``).

The HEAR API itself is :mod:`atst_hear.hear`.
"""
