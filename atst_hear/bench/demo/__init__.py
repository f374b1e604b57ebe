"""The built-in demo suite: small synthetic HEAR tasks of every shape the benchmark has.

``atst-hear demo-tasks OUT_DIR`` (``suite.generate_suite``) writes them; see ``docs/demo.md``.
Nothing is imported here, so that the CLI can register the command without loading numpy,
scipy or torch.
"""
