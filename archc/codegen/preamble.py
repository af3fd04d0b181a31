"""What every emitted file starts with, and which of a net's values are flat.

`CHECK_INPUT` and `INIT_WEIGHTS` are the two functions each emitted module defines before its
classes; `flat_values` says which values are N x C (after an fc or flatten) rather than
N x C x H x W, which decides how a layer reads them.
"""

from __future__ import annotations

from archc import ops
from archc.codegen.modules import FLAT_OPS
from archc.pipeline import Analysis


def flat_values(analysis: Analysis) -> dict[int, bool]:
    """Whether each value is N x C (after an fc or flatten) rather than N x C x H x W."""
    graph, flat = analysis.graph, {}
    for n in graph.order():
        node = graph.node(n)
        if isinstance(node.op, FLAT_OPS):
            flat[n] = True
        elif isinstance(node.op, (ops.Dropout, ops.Softmax, ops.Act, ops.BatchNorm)):
            flat[n] = flat[node.inputs[0]]
        elif isinstance(node.op, ops.Concat | ops.Sum):
            flat[n] = all(flat[i] for i in node.inputs)
        else:
            flat[n] = False
    return flat


CHECK_INPUT = '''def check_input(x, shape):
    """Refuse an input of another size than the net was built for, saying what it takes."""
    if x.dim() != 4 or tuple(x.shape[1:]) != shape:
        c, h, w = shape
        raise ValueError(f"this net takes N x {c} x {h} x {w} images, got {tuple(x.shape)}; "
                         "build it for another size with the input statement or --set")
'''

INIT_WEIGHTS = '''def init_weights(module):
    """Glorot/Xavier-uniform weights and zero biases for every conv and fc, in declaration
    order, so torch.manual_seed makes them reproducible."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
'''
