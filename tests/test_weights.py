"""`archc weights` and archc.convert_weights: torchvision checkpoints into archc's modules, one
net of each shipped torchvision family, outputs equal after conversion; and what a checkpoint
that does not pair gets."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from torchvision_oracle import model

from archc import compile as compile_net
from archc import convert_weights

# One net of each family torchvision writes differently; VGG-11-bn and Wide ResNet-50 (the
# largest, 10 s each) under -m slow: ResNeXt and AlexNet pair the same kinds of layer.
FAMILIES = ["alexnet", pytest.param("vgg11_bn", marks=pytest.mark.slow), "resnet18",
            "resnext50_32x4d", pytest.param("wide_resnet50_2", marks=pytest.mark.slow),
            "densenet121", "squeezenet1_1", "mobilenet_v2", "mnasnet0_5",
            "regnet_x_400mf", "inception_v3", "mobilenet_v3_small", "efficientnet_b0",
            "regnet_y_400mf", "shufflenet_v2_x0_5", "convnext_tiny",
            "googlenet_torchvision"]
BUILDERS = {"googlenet_torchvision": "googlenet"}  # the paper's is googlenet.arch


def checkpoint(tmp_path, name: str, wrap: str | None = None):
    reference = model(BUILDERS.get(name, name))
    state = reference.state_dict()
    path = tmp_path / f"{name}.pth"
    torch.save({wrap: state} if wrap else state, path)
    return reference, path


@pytest.mark.parametrize("name", FAMILIES)
def test_converted_weights_give_torchvisions_outputs(archc, tmp_path, name):
    reference, path = checkpoint(tmp_path, name)
    out = tmp_path / "converted.pt"
    status, stdout, err = archc("weights", f"nets/{name}.arch", "--torchvision", str(path),
                                "-o", str(out))
    assert status == 0, err
    assert f"wrote {out}: {len(reference.state_dict())} tensors paired" in err
    net = compile_net(str(ROOT / "nets" / f"{name}.arch"), backend="torch").eval()
    net.load_state_dict(torch.load(out, weights_only=True))
    x = torch.randn(1, 3, 299, 299) if name == "inception_v3" else torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x), rtol=1e-4, atol=1e-4)


def test_the_python_function_takes_a_state_dict_or_a_wrapped_file(tmp_path):
    reference, path = checkpoint(tmp_path, "resnet18", wrap="state_dict")
    from_file = convert_weights(str(ROOT / "nets/resnet18.arch"), path)
    from_dict = convert_weights(str(ROOT / "nets/resnet18.arch"), reference.state_dict())
    assert from_file.keys() == from_dict.keys()
    assert all(torch.equal(from_file[k], from_dict[k]) for k in from_file)
    assert "layer1.0.residual.conv1.weight" in from_file


def test_a_checkpoint_of_another_net_is_a_located_error(archc, tmp_path):
    """ResNet-50's weights for ResNet-101: they pair up to layer3's seventh block, where
    ResNet-50 has moved on to layer4."""
    _, path = checkpoint(tmp_path, "resnet50")
    status, out, err = archc("weights", "nets/resnet101.arch", "--torchvision", str(path),
                             "-o", str(tmp_path / "x.pt"))
    assert status == 1 and not (tmp_path / "x.pt").exists()
    assert err.splitlines()[0] == (
        "nets/lib/resnet.arch:31:13: error: layer 'layer3.6.residual.conv1': the checkpoint's "
        "'layer4.0.conv1.weight' is 512x1024x1x1, this layer's weight 256x1024x1x1")
    assert "note: in block 'bottleneck' used here" in err


def test_a_checkpoint_with_layers_left_over_is_an_error(archc, tmp_path):
    _, path = checkpoint(tmp_path, "resnet18")
    status, out, err = archc("weights", "nets/resnet18.arch", "--torchvision", str(path),
                             "-o", str(tmp_path / "x.pt"), "--set", "classes=10")
    assert status == 1
    assert "the checkpoint's 'fc.weight' is 1000x512, this layer's weight 10x512" in err


def test_equal_shaped_layers_stored_in_another_order_are_a_located_error(archc, tmp_path):
    """torchvision's resnet18 with layer4.1's conv1 and conv2 (both 512x512x3x3) stored in
    each other's place: by position alone they would pair and swap silently."""
    state = model("resnet18").state_dict()
    keys = list(state)
    first, second = keys.index("layer4.1.conv1.weight"), keys.index("layer4.1.conv2.weight")
    keys[first], keys[second] = keys[second], keys[first]
    path = tmp_path / "swapped.pth"
    torch.save({k: state[k] for k in keys}, path)
    status, out, err = archc("weights", "nets/resnet18.arch", "--torchvision", str(path),
                             "-o", str(tmp_path / "x.pt"))
    assert status == 1 and not (tmp_path / "x.pt").exists()
    assert err.splitlines()[0] == (
        "nets/lib/resnet.arch:9:21: error: layer 'layer4.1.residual.conv1': pairs by position "
        "with the checkpoint's 'layer4.1.conv2', but the checkpoint's 'layer4.1.conv1' bears "
        "this layer's name (layers stored in another order?)")


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.__setitem__("conv1.weight", s["conv1.weight"].to(torch.int8)),
     "the checkpoint's 'conv1.weight' is int8, this layer's weight float32 (a quantized or "
     "integer checkpoint?)"),
    (lambda s: s["layer2.0.bn1.running_var"].__setitem__(slice(0, 2), float("nan")),
     "the checkpoint's 'layer2.0.bn1.running_var' holds 2 NaN or infinite values"),
    (lambda s: s["fc.bias"].__setitem__(3, float("inf")),
     "the checkpoint's 'fc.bias' holds 1 NaN or infinite values"),
])
def test_integer_or_non_finite_weights_are_errors(edit, message):
    from archc.errors import ArchError

    state = model("resnet18").state_dict()
    edit(state)
    with pytest.raises(ArchError) as error:
        convert_weights(str(ROOT / "nets/resnet18.arch"), state)
    assert message in str(error.value)


@pytest.mark.parametrize("content, message", [
    (None, "cannot read {path}: no such file"),
    (b"not a checkpoint", "{path}: not a readable checkpoint (Unsupported operand 110)"),
])
def test_what_is_not_a_checkpoint_exits_2(archc, tmp_path, content, message):
    path = tmp_path / "bad.pth"
    if content is not None:
        path.write_bytes(content)
    status, out, err = archc("weights", "nets/resnet18.arch", "--torchvision", str(path),
                             "-o", str(tmp_path / "x.pt"))
    assert status == 2 and message.format(path=path) in err


def test_a_pickle_that_runs_code_is_refused(archc, tmp_path):
    import pickle

    class Hostile:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "hostile.pth"
    torch.save({"x": Hostile()}, path, pickle_module=pickle)
    status, out, err = archc("weights", "nets/resnet18.arch", "--torchvision", str(path),
                             "-o", str(tmp_path / "x.pt"))
    assert status == 2 and "ran" not in out
    assert err.strip() == f"archc: error: {path}: refused: it asks to run code (print); archc " \
        "loads tensors only and will not load this file"  # not torch's advice to run it


def test_help(archc):
    status, out, err = archc("weights", "--help")
    assert status == 0 and "usage: archc weights" in out and "--torchvision" in out


def test_a_checkpoint_from_before_batch_norms_counted_their_batches_converts():
    """PyTorch before 0.4.1 saved no num_batches_tracked; load_state_dict takes such files."""
    state = {k: v for k, v in model("resnet18").state_dict().items()
             if not k.endswith("num_batches_tracked")}
    converted = convert_weights(str(ROOT / "nets/resnet18.arch"), state)
    assert converted["layer1.0.residual.bn1.num_batches_tracked"].item() == 0
    assert len(converted) == len(state) + 20  # a counter for each of the 20 batch norms


@pytest.mark.parametrize("heads", [True, False])
def test_heads_given_or_dropped_against_the_checkpoint_say_which_flag(archc, tmp_path, heads):
    state = model("googlenet").state_dict()  # with its two auxiliary classifiers
    if not heads:
        state = {k: v for k, v in state.items() if not k.startswith("aux")}
    torch.save(state, tmp_path / "googlenet.pth")
    flag = ["--no-heads"] if heads else []
    status, out, err = archc("weights", "nets/googlenet_torchvision.arch", "--torchvision",
                             str(tmp_path / "googlenet.pth"), "-o", str(tmp_path / "x.pt"), *flag)
    assert status == 2
    assert err.strip() == ("archc: error: the checkpoint has the net's auxiliary heads: drop "
                           "--no-heads" if heads else
                           "archc: error: the checkpoint has no auxiliary heads: add --no-heads")
