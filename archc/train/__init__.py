"""archc.train: the runner behind `archc train` and `archc eval`.

One module per concern: `config` (the run's choices, the papers' recipes, the schedule),
`formats` (the data sets' on-disk formats), `data` (splits, batches, seeded augmentation),
`state` (the net, optimizer and averages of a run, and what a checkpoint holds),
`checkpoint` (atomic writes, safe reads), `distributed` (torchrun ranks), `loop` (the steps
and epochs), `metrics` (top-k errors, metrics.jsonl, the pictures), `evaluation` (`archc eval`),
`options` (the command lines). Importing this package imports nothing heavy.
"""
