"""Freeze: a module archc compiled -> an inference engine for the CPU (`archc.freeze(net)`).

`archc.compile()` gives a plain `nn.Module` that keeps every promise of torch.nn: hooks,
`functional_call`, autocast, `FlopCounterMode`, `torch.compile`, attribute edits. Speed on a
CPU needs what those promises forbid: batch norms folded into copies of the conv weights,
weights reordered once per input size into oneDNN's layout, sums written over shortcuts no
one reads again, whole nets frozen into oneDNN Graph partitions. So that is a separate
object, made on request, as `torch.jit.freeze`, an onnxruntime session or a TensorRT engine
are: an `Engine`, whose contract is

- it is built from the module as it is at that moment (its weights, buffers and settings
  such as `bn.eps`), as the cpu backend's module (archc.backends.cpu) holding its own copy
  of them; a later edit of the module is not seen until `engine.refresh()` (or freezing
  again), so its output is the module's at freeze time;
- it holds no submodules: nothing of it can be hooked, swapped or trained (a hook on the
  engine itself sees the input and the output);
- it runs float32 CPU inference, as the module in eval mode does, autograd off; anything
  else (train mode, an input that requires grad, another dtype or device, autocast) is a
  `FrozenError` that says what to use instead.
"""

from __future__ import annotations

import weakref

import torch

from archc.backends.cpu import graph as cpu_graph
from archc.backends.cpu.calls import CPU
from archc.codegen.lower import Built, lower


class FrozenError(RuntimeError):
    """What a frozen engine does not do, asked of it."""


class Engine(torch.nn.Module):
    """A net frozen for CPU inference (module docstring). Call it as the module."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        built = getattr(type(net), "_archc_built", None)
        if not isinstance(built, Built):
            raise FrozenError(f"archc.freeze takes a module archc.compile() made in this "
                              f"process, not a {type(net).__name__} (a class from a file "
                              "`archc compile -o` wrote does not say which .arch it came "
                              "from: freeze archc.compile(path) and load its state_dict)")
        # Plain attributes, not registered: the engine has no submodules, parameters or
        # buffers, and keeps its source only weakly (refresh() needs it while it lives).
        self.__dict__["_built"] = built
        self.__dict__["_source"] = weakref.ref(net)
        self.__dict__["_net"] = _twin(net, built)
        self.training = False

    def refresh(self) -> Engine:
        """Build again from the module as it is now (its weights, buffers and settings)."""
        net = self._source()
        if net is None:
            raise FrozenError("the module this engine was frozen from no longer exists")
        self.__dict__["_net"] = _twin(net, self._built)
        return self

    def serving(self, x: torch.Tensor) -> str:
        """Which of the engine's two ways serves `x`'s shape now: "oneDNN Graph", "own calls"
        (once chosen, archc.backends.cpu.graph) or "undecided"."""
        return cpu_graph.engine(self._net, x)

    def train(self, mode: bool = True) -> Engine:
        if mode:
            raise FrozenError("a frozen engine runs inference only: train the module "
                              "archc.compile() made, then archc.freeze() it again")
        return self

    def forward(self, x: torch.Tensor):
        _refuse(x)
        with torch.no_grad():
            return self._net(x)

    def extra_repr(self) -> str:
        return f"{type(self._net).__name__}, frozen for float32 CPU inference"


def freeze(net: torch.nn.Module) -> Engine:
    """`net` (a module archc.compile() made) as a CPU inference engine: module docstring."""
    return Engine(net)


def _twin(net: torch.nn.Module, built: Built) -> torch.nn.Module:
    """The cpu backend's module of the same net, holding a copy of `net`'s state and
    settings, in eval mode, its parameters without grad."""
    twin = lower(built.analysis, built.heads, built.logits, CPU).module
    _copy_settings(net, twin)
    try:
        twin.load_state_dict(net.state_dict())
    except RuntimeError as error:
        raise FrozenError(f"the module's state does not fit the net archc built from "
                          f"{built.analysis.path} (built with other constructor arguments? "
                          f"freeze archc.compile(path, overrides=...)): {error}") from None
    return twin.eval().requires_grad_(False)


SETTINGS = (bool, int, float, str, tuple, type(None))  # a module's plain attributes


def _copy_settings(net: torch.nn.Module, twin: torch.nn.Module) -> None:
    """Each leaf module's plain attributes (eps, momentum, slope, an LRN's size) onto the
    twin's module of the same name; a module of another kind (one of the user's, put in
    the net's place) or a batch norm that normalises by its batch in eval mode refused."""
    twins, own = dict(twin.named_modules()), type(net).__module__
    for name, module in net.named_modules():
        if next(module.children(), None) is not None:
            continue  # a container: its leaves carry the settings
        other, kind = twins.get(name), type(module)
        archc_built = kind.__module__ == own or kind.__module__.startswith("torch.nn.")
        if other is None or not archc_built or \
                kind.__module__ != own and type(other) is not kind:
            raise FrozenError(f"module '{name}' is a {kind.__qualname__}, not the module "
                              "archc built there: an engine runs archc's own layers only")
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and \
                module.running_mean is None:
            raise FrozenError(f"batch norm '{name}' keeps no running statistics: it normalises "
                              "by each batch's in eval mode too, so there is nothing to fold")
        for attribute, value in vars(module).items():
            if not attribute.startswith("_") and attribute != "training" and \
                    isinstance(value, SETTINGS):
                setattr(other, attribute, value)


def _refuse(x) -> None:
    """A FrozenError for an input the engine does not run as the module would."""
    if not isinstance(x, torch.Tensor):
        raise FrozenError(f"a frozen engine takes a tensor, not a {type(x).__name__}")
    if x.requires_grad and torch.is_grad_enabled():
        raise FrozenError("the input requires grad: a frozen engine computes no gradients "
                          "(differentiate the module archc.compile() made)")
    if x.device.type != "cpu":
        raise FrozenError(f"a frozen engine runs on the CPU; the input is on {x.device} "
                          "(run the module archc.compile() made there)")
    if x.dtype != torch.float32:
        raise FrozenError(f"a frozen engine runs float32; the input is {x.dtype} (convert "
                          "it, or run the module archc.compile() made)")
    if torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda"):
        raise FrozenError("autocast is on: a frozen engine runs float32 only (run the "
                          "module archc.compile() made under autocast)")
