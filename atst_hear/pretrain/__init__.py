"""Pre-training of ATST-Clip and ATST-Frame, and ATST-C2F distillation (docs/pretraining.md).

Needs the ``train`` extra (Lightning); the rest of the toolkit never imports this package.
"""
