"""The runner's errors: what `archc train` and `archc eval` show a user as `error: ...`.

`DataError` is the one base: data that cannot be read or does not fit the net, a checkpoint
that is not one (`checkpoint.CheckpointError`), a run folder that holds another run
(`resume.RunMismatch`), a loss that diverged (`loop.Diverged`), a device that is not there.
The commands catch `DataError` and nothing wider, so a bug in archc keeps its traceback.
"""

from __future__ import annotations


class DataError(Exception):
    """A user's mistake or the data's, said in one line; no traceback."""
