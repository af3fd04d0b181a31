"""The values of an ONNX file that do not depend on the image: the file read (its external
weights too), each value's inferred dims and element type, and the constants (initializers,
and what the exporter computes from them: shape arithmetic, fills, reshaped weights) folded
with onnx's reference evaluator. Nothing that depends on the image is run.
"""

from __future__ import annotations

from pathlib import Path

from archc.importer.trace import ImportFailure


def load(path: Path):
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise ImportFailure(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise ImportFailure(f"{path}: not a readable ONNX file (truncated or another "
                            f"format?): {error}") from None
    if not model.graph.node:
        raise ImportFailure(f"{path}: not a readable ONNX file (no graph)")
    external = [t.name for t in model.graph.initializer
                if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        try:
            onnx.load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError) as error:
            raise ImportFailure(f"{path}: its weights live in another file that cannot be "
                                f"read ({error})") from None
    return model


def inferred(model) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Each value's dims and element type, where ONNX's shape inference gives them."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001  (a file ONNX cannot infer: the rules that need sizes refuse)
        return {}, {}
    values = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    return ({v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values},
            {v.name: v.type.tensor_type.elem_type for v in values})


def constants(model, shapes: dict[str, list[int]], types: dict[str, int]) -> dict[str, object]:
    """Every value that does not depend on the image, by name, as numpy arrays: initializers,
    and the outputs of nodes whose inputs are such values (an exporter's shape arithmetic, a
    weight stored in another shape, a fill), folded with onnx's reference evaluator at the
    file's opset. A Shape of a tensor with a static size is that size, a CastLike to a
    tensor's type is a cast: neither needs the tensor's contents."""
    import numpy
    from onnx import helper, numpy_helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        inputs = [i for i in node.input if i]
        if node.op_type == "Shape":
            dims = values[inputs[0]].shape if inputs[0] in values else shapes.get(inputs[0])
            if dims and all(dims):
                attrs = attributes(node)
                values[node.output[0]] = numpy.array(
                    dims[attrs.get("start", 0):attrs.get("end", len(dims))], numpy.int64)
        elif node.op_type == "CastLike" and inputs[0] in values and types.get(inputs[1]):
            dtype = helper.tensor_dtype_to_np_dtype(types[inputs[1]])
            values[node.output[0]] = values[inputs[0]].astype(dtype)
        elif all(i in values for i in inputs) and node.domain in ("", "ai.onnx"):
            values.update(zip(node.output, evaluated(node, values, opset)))
    return values


def evaluated(node, values: dict, opset: int) -> list:
    """One node's outputs from constant inputs (onnx.reference: the operator as the standard
    defines it at `opset`)."""
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    inputs = [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(values[i].dtype),
                                            values[i].shape) for i in node.input if i]
    outputs = [helper.make_value_info(o, onnx.TypeProto()) for o in node.output]
    model = helper.make_model(helper.make_graph([node], "constant", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, {i: values[i] for i in node.input if i})


def attributes(node) -> dict:
    from onnx import helper, numpy_helper

    found = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        found[attribute.name] = numpy_helper.to_array(value) if hasattr(value, "dims") else value
    return found
