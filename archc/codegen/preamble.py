"""What every emitted file starts with: `CHECK_INPUT` and `INIT_WEIGHTS`, the two functions
each emitted module defines before its classes. No compatibility code: a checkpoint keyed as
an older archc keyed it converts once (`archc weights NET.arch --archc OLD.pt -o NEW.pt`).
(Which values are flat, N x C rather than N x C x H x W, is archc.analysis.shapes.flat_values.)
"""

from __future__ import annotations

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
