"""Evaluation of the detection core on the PAN text-alignment corpora. Pure python, no gRPC.

- `plagdet`: PAN's character-level precision, recall, granularity and plagdet;
- `pan`: the PAN 2013 corpus reader (pairs, cases, stratified subsets);
- `doclevel`: document-level ROC-AUC and best-threshold F1;
- `run`: runs a `Detector` over corpus pairs (pair mode and retrieval mode) and scores the runs.
"""
