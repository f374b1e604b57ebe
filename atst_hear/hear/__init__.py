"""HEAR modules: ``atst_hear.hear.frame``, ``atst_hear.hear.clip`` and ``atst_hear.hear.c2f``.

Each exposes ``load_model(model_file_path=None, **options)``, ``get_scene_embeddings(audio,
model)`` and ``get_timestamp_embeddings(audio, model)`` (hear-eval-kit passes ``options`` as the
JSON ``--model-options``). The shared implementation is in :mod:`atst_hear.hear.api`.
"""
