"""The task layer: HEAR task folders, their scores and SED decoding.

It sits above the embeddings and below both pre-training and the benchmark, so either can read
a task folder and score predictions without the other. Imports of the metric libraries
(scikit-learn, scipy, pandas, sed_eval, psds_eval, sed_scores_eval) happen inside the score that
needs them: reading a task folder and top-1 accuracy need only numpy.
"""
