"""The seed paper's comparison experiments (Table 1, meProp, distributed), run on real training.

Each experiment trains through :mod:`hwsim.trace`, aggregates the measured accuracy / δ̃z
sparsity / bit-width and writes a self-contained report folder: ``index.md``, PNG figures and
the numbers as CSV and JSON. They import torch (training) and matplotlib (figures).
"""
