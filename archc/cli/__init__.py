"""The `archc` command line: `main` (the commands and their exit statuses), `args` (what
every command shares: `--set`, the extras check), `kernels` and `kernels_table` (`archc
kernels`). The runner's command lines live in archc.train.options.
"""
