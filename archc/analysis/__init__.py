"""Analyses of the checked graph, no torch: `shapes` (output shape and receptive field of
every layer), `cost` (weights, biases, MACs), `check` (`expect` and `paper` claims).
"""
