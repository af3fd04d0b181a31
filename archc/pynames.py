"""The Python names generated code owns, and what a name from an .arch file may become there.

A label becomes a member (`self.<label>`) and may be renamed off these names (`safe`); a
parameter becomes a keyword argument of the generated class (`type(net)(alpha=1.3)`), so it
cannot be renamed without breaking that call: the loader refuses it instead, saying why
(`parameter_clash`). No torch here: the public attributes of an nn.Module are listed below; a
test checks the list against the installed torch.
"""

from __future__ import annotations

import builtins
import keyword
import re

from archc import ops
from archc.lang.functions import FUNCTIONS


def _helper_names() -> set[str]:
    """What the emitted file defines or imports for its ops and functions, once, at the top
    (`channel_shuffle`, `LayerNorm2d`, `StochasticDepth`, `make_divisible`, `math`): a
    parameter or label of that name would shadow it."""
    texts = [spec.helper for spec in ops.REGISTRY.values()] + \
        [function.helper for function in FUNCTIONS.values()]
    return {name for text in texts
            for name in re.findall(r"^(?:def|class|import) (\w+)", text, re.MULTILINE)}


# The generated code's own names: its imports (the backends' modules `K`, the kernels, and `C`,
# the cpu backend's calls, among them), its helpers, its methods and arguments.
GENERATED = _helper_names() | {
    "torch", "nn", "F", "self", "x", "aux", "heads", "init_weights", "loss_weights",
    "in_channels", "K", "C", "check_input"}
# Names that would shadow something the generated code relies on.
RESERVED = set(keyword.kwlist) | set(dir(builtins)) | GENERATED
# A layer must not overwrite `training` & co. Private names and dunders are refused by `safe`.
MODULE_ATTRIBUTES = frozenset("""
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda
    double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
    get_submodule half ipu load_state_dict modules mtia named_buffers named_children
    named_modules named_parameters parameters register_backward_hook register_buffer
    register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
""".split())


def safe(name: str) -> str:
    """`name` as a Python identifier the generated code can hold as a member."""
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    if not name.isidentifier() or name.startswith("_"):  # a digit; dunders and private names
        name = "layer_" + name
    if name in RESERVED or name in MODULE_ATTRIBUTES:
        name += "_"
    return name


def parameter_clash(name: str) -> str | None:
    """Why `name` cannot be a keyword argument of a generated class, or None where it can."""
    if name == "heads":
        return "'heads' is the generated net's flag for its auxiliary heads"
    if keyword.iskeyword(name):
        return f"'{name}' is a Python keyword"
    if name.startswith("_"):
        return "the generated code keeps names that start with '_' private"
    if name in GENERATED:
        return f"the generated code uses '{name}' itself"
    if name in dir(builtins):
        return f"it would hide Python's builtin '{name}'"
    if name in MODULE_ATTRIBUTES:
        return f"'{name}' is an attribute of every nn.Module"
    return None
