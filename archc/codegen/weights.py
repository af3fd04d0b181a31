"""Weights: a torchvision checkpoint -> the `state_dict` of archc's module for the same net.

Paired by structure, not by name (torchvision's `layer2.0.conv2` is archc's
`layer2.0.residual.conv2`: one role, two paths; other nets differ more): each side's
`state_dict` as a list of layers (a module's path and its tensors by role: weight, bias,
running_mean, running_var, num_batches_tracked), in declaration order; layer i of one with
layer i of the other, every tensor's role and shape checked. A Linear's weight pairs with a 1x1
conv's by a reshape (ConvNeXt writes its pointwise convs as Linear layers). Where the names
can speak they are heard: a layer paired with the checkpoint's `conv2` while the checkpoint
has a `conv1` beside it, as archc's layer is named, is an error (two equal-shaped layers
stored in another order would otherwise swap silently). Every tensor must be of the slot's
kind (float weights, integer counters) and finite. The first layer that does not pair is an
`ArchError` at the statement that made archc's layer, naming both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from archc.codegen.lower import Lowered
from archc.errors import ArchError, UsageError
from archc.files import irregular, why_unloadable


@dataclass(frozen=True)
class Layer:
    path: str  # the module's qualified name
    tensors: dict[str, torch.Tensor]  # by role: "weight", "bias", "running_mean", ...


# Roles torchvision names otherwise: ConvNeXt's block holds its layer scale itself.
ROLES = {"layer_scale": "scale"}


def layers(state: dict[str, torch.Tensor]) -> list[Layer]:
    """A state_dict's tensors grouped by module, in its order, each module after the modules
    inside it: a state_dict lists a module's own tensors before its children's (ConvNeXt's
    block: its layer_scale, then its convs), the order its forward() meets them is after."""
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        path, _, role = key.rpartition(".")
        grouped.setdefault(path, {})[ROLES.get(role, role)] = value
    found = [Layer(path, tensors) for path, tensors in grouped.items()]
    return _children_first(found)


def _children_first(found: list[Layer]) -> list[Layer]:
    ordered: list[Layer] = []
    waiting: list[Layer] = []  # modules whose children are still being listed
    for layer in found:
        while waiting and not layer.path.startswith(waiting[-1].path + "."):
            ordered.append(waiting.pop())
        if any(other.path.startswith(layer.path + ".") for other in found):
            waiting.append(layer)
        else:
            ordered.append(layer)
    return ordered + waiting[::-1]


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint's state_dict: torchvision's files are one; training scripts often wrap it
    as {"state_dict": ...} or {"model": ...}. Loaded without running code (weights_only);
    a FIFO or a device (which would block or never end) refused before it is opened."""
    if (kind := irregular(path)) is not None:
        raise UsageError(f"cannot read {path}: it is {kind}, not a checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"cannot read {path}: no such file") from None
    except Exception as error:  # torch's unpickler says what it refused, in its own types
        raise UsageError(f"{path}: {why_unloadable(error)}") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise UsageError(f"{path} holds no state_dict (a dict of tensors)")
    return data


def convert_net(path_or_source, checkpoint, heads: bool = True,
                overrides: dict | None = None) -> dict[str, torch.Tensor]:
    """archc.convert_weights: lower the net, load the checkpoint (a path or a state_dict),
    pair them."""
    from archc.codegen.lower import lower
    from archc.pipeline import analyse

    text = str(path_or_source)
    source = {"path": "<source>", "text": text} if "{" in text else {"path": text, "text": None}
    analysis = analyse(source["path"], overrides, source["text"]).raise_errors()
    state = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    return convert(lower(analysis, heads=heads), state)


def convert(lowered: Lowered, source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`source` (another implementation's state_dict of the same net) as a state_dict for
    `lowered.module`, every tensor paired by position and role and its shape checked."""
    theirs, ours = layers(source), layers(lowered.module.state_dict())
    their_paths = {layer.path for layer in theirs}
    state: dict[str, torch.Tensor] = {}
    for i, mine in enumerate(ours):
        if i >= len(theirs):
            raise _error(lowered, mine, f"the checkpoint has {len(theirs)} layers with tensors, "
                                        f"the net {len(ours)}: nothing pairs with this one")
        if named := _namesake(mine, theirs[i], their_paths):
            raise _error(lowered, mine, f"pairs by position with the checkpoint's "
                                        f"'{theirs[i].path}', but the checkpoint's '{named}' "
                                        "bears this layer's name (layers stored in another "
                                        "order?)")
        for role, value in _paired(lowered, mine, theirs[i]).items():
            state[f"{mine.path}.{role}"] = value
    if len(theirs) > len(ours):
        extra = theirs[len(ours)]
        raise ArchError(f"the checkpoint has {len(theirs)} layers with tensors, the net "
                        f"{len(ours)}: its '{extra.path}' and those after it pair with nothing")
    return state


def _paired(lowered: Lowered, mine: Layer, theirs: Layer) -> dict[str, torch.Tensor]:
    if set(mine.tensors) - set(theirs.tensors) == {"num_batches_tracked"}:  # a batch norm
        # saved before PyTorch 0.4.1 counted its batches: 0, as load_state_dict takes it
        theirs = Layer(theirs.path, {**theirs.tensors,
                                     "num_batches_tracked": torch.tensor(0, dtype=torch.long)})
    if set(mine.tensors) != set(theirs.tensors):
        raise _error(lowered, mine, f"the checkpoint's '{theirs.path}' holds "
                                    f"{_roles(theirs)}, this layer {_roles(mine)}")
    out = {}
    for role, slot in mine.tensors.items():
        value = theirs.tensors[role]
        if value.shape != slot.shape and value.dim() == 2 and slot.dim() == 4 and \
                value.shape == slot.shape[:2] and slot.shape[2:] == (1, 1):
            value = value.reshape(slot.shape)  # a Linear as a 1x1 conv
        if value.shape != slot.shape:
            raise _error(lowered, mine, f"the checkpoint's '{theirs.path}.{role}' is "
                                        f"{_size(value)}, this layer's {role} {_size(slot)}")
        if value.dtype.is_floating_point != slot.dtype.is_floating_point or value.is_complex():
            raise _error(lowered, mine, f"the checkpoint's '{theirs.path}.{role}' is "
                                        f"{str(value.dtype).removeprefix('torch.')}, this "
                                        f"layer's {role} {str(slot.dtype).removeprefix('torch.')}"
                                        " (a quantized or integer checkpoint?)")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise _error(lowered, mine, f"the checkpoint's '{theirs.path}.{role}' holds {bad} "
                                        "NaN or infinite values")
        out[role] = value.to(slot.dtype)
    return out


def _namesake(mine: Layer, theirs: Layer, their_paths: set[str]) -> str | None:
    """The checkpoint's layer beside `theirs` that bears `mine`'s name, where `theirs` bears
    another (archc's `layer4.1.residual.conv1` paired with `layer4.1.conv2` while
    `layer4.1.conv1` exists); None where the names agree or cannot speak (an index:
    `shortcut.0` and `downsample.0`)."""
    name, (parent, _, their_name) = mine.path.rpartition(".")[2], theirs.path.rpartition(".")
    if name == their_name or name.isdigit() or their_name.isdigit():
        return None
    sibling = f"{parent}.{name}" if parent else name
    return sibling if sibling in their_paths else None


def _error(lowered: Lowered, layer: Layer, message: str) -> ArchError:
    """At the statement that made archc's layer (its member name in the message)."""
    node_id = lowered.emitted.layer_nodes.get(layer.path)
    where = f"layer '{layer.path}': "
    if node_id is None:
        return ArchError(where + message)
    node = lowered.analysis.graph.node(node_id)
    return ArchError(where + message, node.span, node.notes)


def _roles(layer: Layer) -> str:
    return ", ".join(sorted(layer.tensors))


def _size(tensor: torch.Tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "a scalar"
