"""The cpu backend: every conv one oneDNN primitive with what follows it, the net one oneDNN
Graph where that measures faster.

Compile time (no torch): `plan` (which layers each oneDNN conv computes) and `calls` (its call
rows, the `CPU` backend). Run time (torch): `runtime` (`conv`, `linear`,
`local_response_norm`: what emitted modules call), `graph` (the whole-net oneDNN Graph and
the `inference` decorator of an emitted forward), `owner` and `net_state` (which activations
the net may overwrite, and when its weights changed).

Emitted modules write `from archc.backends import cpu as C` and call `C.conv(...)`: the
runtime's names are this package's, loaded on first use (PEP 562), so that emitting a cpu
module imports no torch.
"""

from importlib import import_module


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(import_module(f"{__name__}.runtime"), name)
