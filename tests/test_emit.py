"""The emitted PyTorch source as a product: golden files, its shape, its state_dict contract."""

from __future__ import annotations

import ast as pyast
import builtins
import keyword
import re

import pytest
import torch
from conftest import ROOT, nets, sweep

from archc.analysis.params import width_params
from archc.backends.registry import BACKENDS
from archc.codegen.drafts import wrapped
from archc.codegen.emit import emit
from archc.codegen.lower import compile_net, lower
from archc.codegen.names import MODULE_ATTRIBUTES, RESERVED
from archc.errors import ArchError
from archc.pipeline import analyse


@pytest.mark.parametrize("name", ["googlenet", "nin_cifar10", "vgg_e"])
def test_emitted_source(archc, golden, name):
    status, source, err = archc("compile", f"nets/{name}.arch")
    assert status == 0, err
    golden(ROOT / "tests/golden/emit" / f"{name}.py", source)


@pytest.mark.parametrize("name", ["googlenet", "nin_cifar10"])
def test_state_dict_keys_are_a_contract(golden, name):
    """Checkpoints depend on these keys: a change here breaks every saved model."""
    module = lower(analyse(ROOT / f"nets/{name}.arch")).module
    lines = [f"{key} {'x'.join(map(str, value.shape))}"
             for key, value in module.state_dict().items()]
    golden(ROOT / "tests/golden/state_dict" / f"{name}.txt", "\n".join(lines) + "\n")


def test_one_class_per_block_with_the_blocks_parameters(archc):
    _, source, _ = archc("compile", "nets/googlenet.arch")
    classes = re.findall(r"^class (\w+)\(nn\.Module\):", source, re.M)
    assert classes == ["Inception", "AuxClassifier", "Googlenet"]
    assert "def __init__(self, in_channels, n1, n3r, n3, n5r, n5, proj):" in source
    assert "self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)  # 512x14x14" in source
    assert "self.aux2 = AuxClassifier(528, classes) if heads else None" in source
    assert "def __init__(self, classes=1000, heads: bool = True):" in source
    assert "nn.Conv2d(n3r, n3, 3, padding=1),  # n3 x H x W" in source
    assert len(source.splitlines()) < 352 / 2  # a class per use took 352 lines


@pytest.mark.parametrize("name", ["googlenet", "nin_cifar10", "vgg_e", "vgg_a_lrn"])
def test_every_layer_line_carries_its_shape(archc, name):
    """At the end of the line, or on the line above where that would be too long."""
    _, source, _ = archc("compile", f"nets/{name}.arch")
    lines = source.splitlines()
    layers = [i for i, line in enumerate(lines)
              if re.search(r"(nn\.\w+\(|= self\.\w+(\[\d+\])?\(|torch\.cat)", line)
              and "if heads else None" not in line
              and not line.endswith(("ModuleList([", "ModuleDict({"))]
    bare = [lines[i] for i in layers
            if not re.search(r"  # \S", lines[i]) and not lines[i - 1].strip().startswith("# ")]
    assert layers and not bare
    assert max(map(len, lines)) <= 100


def test_branches_are_named_by_what_they_do():
    module = lower(analyse(ROOT / "nets/googlenet.arch")).module
    block = module.inception3a
    assert [name for name, _ in block.named_children()] == \
        ["branch1x1", "branch3x3", "branch5x5", "branch_pool"]
    assert block.branch3x3[1].kernel_size == (3, 3) and block.branch3x3[1].in_channels == 96
    assert isinstance(block.branch_pool[0], torch.nn.MaxPool2d)


def test_the_list_of_module_attributes_covers_torch():
    """names.py lists nn.Module's public attributes so that emitting needs no torch."""
    public = {n for n in dir(torch.nn.Module()) if not n.startswith("_")}
    assert public <= MODULE_ATTRIBUTES


@pytest.mark.parametrize("text, python", [
    ("a - (b - c)", "a - (b - c)"), ("(a - b) - c", "a - b - c"), ("(a + b) * 2", "(a + b) * 2"),
    ("a * (2 + 3)", "a * 5"), ("-a * b", "-a * b"), ("-(a + b)", "-(a + b)"),
    ("a / 2 + 1", "a // 2 + 1"), ("2 * 3 - 7", "-1"),
])
def test_widths_print_as_python_with_the_fewest_parentheses(text, python):
    from archc.codegen import pyexpr
    from archc.lang.parser import parse

    file = parse(f"block b(a, b, c) {{ conv 1x1 ({text}) }}\n", "w.arch")
    (op,) = [s.core for s in file.blocks[0].body]
    expr = op.args[1]
    assert pyexpr.python(expr, {"a": "a", "b": "b", "c": "c"}) == python


def test_strided_sizes_are_written_in_the_blocks_input_size():
    """A block used at several sizes: `H/s x W/s` where each use divides its input by its own
    stride parameter, `H/2 x W/2` where all halve it, never a list of every size."""
    source = lower(analyse(ROOT / "nets/resnet50.arch")).emitted.source
    assert "nn.Conv2d(w, w, 3, stride=s, padding=1, bias=False),  # w x H/s x W/s" in source
    assert not re.search(r"# .*\d+x\d+ or \d+x\d+", source)
    halving = lower(analyse(ROOT / "nets/x.arch", text="""
block down(c) { conv 3x3/2 c pad=1 }
net t { input 3x32x32; down(8); down(16); down(16) }
""")).emitted.source
    assert "= nn.Conv2d(in_channels, c, 3, stride=2, padding=1)  # c x H/2 x W/2" in halving


def test_a_chain_of_layers_is_an_nn_sequential_called_once():
    """ResNet's stages and its stem's conv + bn read as torchvision writes them, keyed by
    position (torchvision's downsample.0)."""
    lowered = lower(analyse(ROOT / "nets/resnet50.arch"))
    source = lowered.emitted.source
    assert "        self.layer1 = nn.Sequential(\n            BottleneckProj(64, 64, 1)," in source
    assert "        x = self.layer1(x)  # 256x56x56\n        x = self.layer2(x)" in source
    assert "self.layer1[" not in source
    keys = list(lowered.module.state_dict())
    assert keys[:3] == ["conv1.0.weight", "conv1.1.weight", "conv1.1.bias"]
    assert "layer1.0.shortcut.0.weight" in keys and "layer1.0.shortcut.1.running_var" in keys


def test_a_member_of_layers_of_several_kinds_names_them_by_role():
    """ResNet's residual (a ReLU between its layers, so no chain) as torchvision's Bottleneck
    names its layers; VGG's three convs of one member stay indexed (no `conv3.conv1`)."""
    lowered = lower(analyse(ROOT / "nets/resnet50.arch"))
    source = lowered.emitted.source
    assert "        self.residual = nn.ModuleDict({\n            \"conv1\": nn.Conv2d(" in source
    assert "        residual = self.residual.conv2(residual)  # w x H/s x W/s\n" in source
    assert "self.residual[" not in source
    keys = list(lowered.module.state_dict())
    assert "layer1.0.residual.conv1.weight" in keys and "layer4.2.residual.bn3.running_var" in keys
    assert not [k for k in keys if re.search(r"residual\.\d", k)]
    named = lowered.emitted.layer_nodes
    assert {"layer1.0.residual.conv1", "layer4.2.residual.bn3"} <= named.keys()
    vgg = lower(analyse(ROOT / "nets/vgg_e.arch")).emitted.source
    assert "self.conv3 = nn.ModuleList([" in vgg and "x = F.relu(self.conv3[1](x))" in vgg


def test_a_role_is_the_layers_label_inside_its_member(tmp_path):
    """Labels inside a member name its layers; a label an nn.ModuleDict answers itself
    (`keys`) or one that is no identifier (`5b`) is made safe; a name that recurs counts."""
    path = tmp_path / "roles.arch"
    path.write_text("""net roles {
    input 4x8x8
    sum {
        residual: { reduce: conv 1x1 4; bn; relu; keys: conv 3x3 4 pad=1; bn; relu; 5b: conv 1x1 4 }
        id
    }
}
""")
    module = lower(analyse(path)).module
    assert list(module.residual) == ["reduce", "bn1", "keys_", "bn2", "conv5b"]
    assert isinstance(module.residual.keys_, torch.nn.Conv2d)
    assert module.residual.keys_.padding == (1, 1)
    module.eval()(torch.randn(2, 4, 8, 8))  # it runs: every call names a layer that is there


@pytest.mark.parametrize("net, args", [("googlenet", ("classes",)),
                                       ("efficientnet_b0", ("classes",)),  # not its size
                                       ("mnasnet0_5", ("classes", "alpha"))])
def test_the_width_parameters_are_the_ones_that_change_channels_only(net, args):
    analysis = analyse(ROOT / "nets" / f"{net}.arch")
    assert width_params(analysis.program, analysis.graph) == args


@pytest.mark.parametrize("net, kwargs, built_as", [
    ("googlenet", {"classes": 10}, ("googlenet", {"classes": 10})),
    ("mnasnet0_5", {"alpha": 1.0}, ("mnasnet1_0", {})),  # the same net at another width
    ("vgg_e", {"classes": 7}, ("vgg_e", {"classes": 7})),
])
def test_a_net_class_takes_its_width_parameters(net, kwargs, built_as):
    """`Googlenet(classes=10)` is the net archc builds with --set classes=10: every parameter
    and buffer of the same shape, under the same key."""
    emitted = type(lower(analyse(ROOT / "nets" / f"{net}.arch")).module)
    other, overrides = built_as
    want = lower(analyse(ROOT / "nets" / f"{other}.arch", overrides)).module.state_dict()
    got = emitted(**kwargs).state_dict()
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in want.items()}


def test_a_net_with_a_head_written_in_numbers_takes_no_width_parameters(tmp_path):
    path = tmp_path / "headed.arch"
    path.write_text("""net headed(classes = 10) {
    input 3x8x8
    conv 3x3 8 pad=1; relu
    a: conv 3x3 8 pad=1; relu
    head side from a weight 0.5 { gap; fc classes }
    gap
    fc classes
}
""")
    analysis = analyse(path)
    assert width_params(analysis.program, analysis.graph) == ()
    source = lower(analysis).emitted.source
    assert "def __init__(self, heads: bool = True):" in source
    assert source.count("nn.Linear(8, 10)") == 2  # the net's fc and the head's


# Each net's keys as an older archc wrote them: before role names (`residual.0.weight`), and
# before ConvNeXt's and EfficientNet's stages were one statement each (`x3 as i`).
OLD_KEYS = sorted((ROOT / "tests/data").glob("keys_before_*/*.txt"))


@pytest.mark.parametrize("keys", OLD_KEYS, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_a_checkpoint_keyed_as_an_older_archc_converts_by_structure(keys, archc, tmp_path):
    """No compatibility code in emitted files: `archc weights NET --archc OLD.pt -o NEW.pt`
    pairs such a checkpoint by structure, every tensor into the layer that held it, once."""
    name = keys.stem
    module = compile_net(ROOT / f"nets/{name}.arch", backend="torch")
    assert "rename_indexed_keys" not in lower(analyse(ROOT / f"nets/{name}.arch")).emitted.source
    old_keys = keys.read_text().split()
    new = module.state_dict()
    assert len(old_keys) == len(new) and old_keys != list(new)
    old = _distinct_values(old_keys, new)
    with pytest.raises(RuntimeError, match="Missing key"):
        module.load_state_dict(old)
    torch.save(old, tmp_path / "old.pt")
    status, _, err = archc("weights", f"nets/{name}.arch", "--archc", str(tmp_path / "old.pt"),
                           "-o", str(tmp_path / "new.pt"))
    assert status == 0, err
    module.load_state_dict(torch.load(tmp_path / "new.pt"))  # strict
    for (key, value), loaded in zip(old.items(), module.state_dict().values(), strict=True):
        assert torch.equal(loaded, value), key


def _distinct_values(keys: list[str], like: dict) -> dict:
    """`keys` (in declaration order) with tensors shaped as `like`'s, none equal to its own."""
    generator = torch.Generator().manual_seed(0)
    return {key: torch.randn(value.shape, generator=generator) if value.is_floating_point()
            else value + 7 for key, value in zip(keys, like.values(), strict=True)}


@pytest.mark.parametrize("net, backend", [
    ("shufflenet_v2_x1_0", "torch"), ("mnasnet0_5", "torch"), ("efficientnet_b0", "cpu"),
    ("resnet50", "cpu"), ("convnext_tiny", "triton")])
def test_a_call_longer_than_a_line_wraps_its_arguments(net, backend):
    """These nets' groups=, make_divisible(...) widths and fused calls ran past 100 columns."""
    source = emit(analyse(ROOT / "nets" / f"{net}.arch"), backend=BACKENDS[backend]).source
    assert max(len(line) for line in source.splitlines()[1:]) <= 100


def test_wrapping_splits_at_top_level_commas_only():
    keywords = ", ".join(f"w{i}=w{i}" for i in range(12))
    code = f"        y = K.f(x, g(a, b), name='p, q(', {keywords})"
    lines = wrapped(code).splitlines()
    assert lines[0] == "        y = K.f(" and all(len(line) <= 100 for line in lines)
    assert lines[1].startswith("            x, g(a, b), name='p, q(', w0=w0,")
    assert " ".join(line.strip() for line in lines[1:]) == code[len("        y = K.f("):]
    assert wrapped("        x = short(x)") == "        x = short(x)"
    commented = "        y = f(x)  # " + "a remark (in parentheses) " * 4 + "(end)"
    assert wrapped(commented) == commented


def unused_members(source: str) -> list[str]:
    """The modules an emitted class builds that its forward() never names (an nn.Sequential
    called as a whole names them all)."""
    unused = []
    for cls in (n for n in pyast.parse(source).body if isinstance(n, pyast.ClassDef)):
        methods = {f.name: f for f in cls.body if isinstance(f, pyast.FunctionDef)}
        if "__init__" not in methods:
            continue
        forward = pyast.unparse(methods["forward"])
        for stmt in pyast.walk(methods["__init__"]):
            target = stmt.targets[0] if isinstance(stmt, pyast.Assign) else None
            if not (isinstance(target, pyast.Attribute) and isinstance(stmt.value,
                                                                       (pyast.Call, pyast.IfExp))):
                continue
            if re.search(rf"self\.{target.attr}\(", forward):
                continue  # called as a whole: a chain
            unused += [f"{cls.name}: {path}" for path in _module_paths(target.attr, stmt.value)
                       if not re.search(re.escape(path) + r"(?![\w\[])", forward)]
    return unused


def _module_paths(name: str, value) -> list[str]:
    func = pyast.unparse(value.func) if isinstance(value, pyast.Call) else ""
    if func == "nn.Sequential":
        return [f"self.{name}[{k}]" for k in range(len(value.args))]
    if func not in ("nn.ModuleList", "nn.ModuleDict"):
        return [f"self.{name}"]
    held = value.args[0]
    if isinstance(held, pyast.List):
        return [f"self.{name}[{k}]" for k in range(len(held.elts))]
    return [f"self.{name}.{k.value}" for k in held.keys]


@pytest.mark.parametrize("backend", ["torch", "cpu", "triton"])
@pytest.mark.parametrize("name", sweep(nets()))
def test_no_emitted_class_builds_a_module_it_does_not_call(name, backend):
    """Every shipped net: each module a class builds is named in its forward(); a pool the
    triton kernels compute (GoogLeNet's pool projection reads through it, the depthwise conv
    sums EfficientNet's squeeze) is handed to the kernel's call, whose hooks need it."""
    source = emit(analyse(ROOT / "nets" / name), backend=BACKENDS[backend]).source
    assert unused_members(source) == []


def unused_arguments(source: str) -> list[str]:
    """The constructor arguments an emitted class takes and never reads."""
    unused = []
    for cls in (n for n in pyast.parse(source).body if isinstance(n, pyast.ClassDef)):
        init = next((f for f in cls.body if isinstance(f, pyast.FunctionDef) and
                     f.name == "__init__"), None)
        if init is None:
            continue
        read = {n.id for n in pyast.walk(init) if isinstance(n, pyast.Name) and
                isinstance(n.ctx, pyast.Load)}
        unused += [f"{cls.name}({a.arg})" for a in init.args.args[1:] if a.arg not in read]
    return unused


@pytest.mark.parametrize("name", sweep(nets()))
def test_every_emitted_class_uses_every_constructor_argument(name):
    """A block parameter that sizes a window (EfficientNet's `conv (k)x(k) ... pad=same`) is
    the class's `k` and `padding=k // 2`: one MbconvDw for 3x3 and 5x5, not a clone per size
    that takes `k` and ignores it (issue 36)."""
    source = emit(analyse(ROOT / "nets" / name)).source
    assert unused_arguments(source) == []


def test_one_class_serves_every_window_a_block_parameter_gives():
    source = emit(analyse(ROOT / "nets/efficientnet_b0.arch")).source
    assert re.findall(r"class (Mbconv\w*)\(", source) == ["MbconvDw", "Mbconv", "MbconvRes"]
    assert "in_channels, in_channels, k, stride=s, padding=k // 2," in source
    net = compile_net(ROOT / "nets/efficientnet_b0.arch")
    windows = sorted({m.kernel_size for m in net.modules() if isinstance(m, torch.nn.Conv2d)
                      and m.groups > 1})
    assert windows == [(3, 3), (5, 5)]
    assert all(m.padding == (m.kernel_size[0] // 2,) * 2 for m in net.modules()
               if isinstance(m, torch.nn.Conv2d) and m.groups > 1)


@pytest.mark.parametrize("name", ["googlenet", "resnet18", "efficientnet_b0", "nin_cifar10"])
def test_every_backend_builds_the_torch_backends_modules_in_its_containers(name):
    """The same module names, containers and layer types on every backend (a chain is an
    nn.Sequential on each, though a fused call reads its layers one by one), so `net.conv1(x)`
    and a hook on any module work alike; the block classes may differ."""
    def tree(module):
        return [(path, type(m).__name__ if type(m).__module__.startswith("torch.nn") else "")
                for path, m in module.named_modules()]
    reference = compile_net(ROOT / f"nets/{name}.arch", backend="torch")
    for backend in ("cpu", "triton"):
        net = compile_net(ROOT / f"nets/{name}.arch", backend=backend)
        assert tree(net) == tree(reference), backend
        assert list(net.state_dict()) == list(reference.state_dict())


# The names an emitted file uses beside the user's: its imports (every backend's), the helpers
# its ops and functions define, its own functions and attributes.
EMITTERS_NAMES = sorted((RESERVED - set(dir(builtins)) - set(keyword.kwlist) - {"in_channels"}) |
                        {"buffer", "concat_widths"})


RESERVED_BY_EMITTER = set(EMITTERS_NAMES) - {"buffer", "concat_widths"}  # fresh() avoids those


def test_every_backends_imported_names_are_reserved():
    imported = {line.split()[-1] for backend in BACKENDS.values() for line in backend.imports}
    assert imported <= RESERVED, imported - RESERVED


@pytest.mark.parametrize("name", EMITTERS_NAMES)
def test_a_label_named_as_the_emitters_own_names_builds_and_runs(name):
    """Issue 35: a concat branch labelled `C` or `channel_shuffle` broke the emitted file; each
    label is a member of its own name now (renamed off the emitter's where it must be)."""
    source = ("block b(w) { conv 1x1 w relu; shuffle 2; droppath 0.1\n"
              f"  concat {{ {name}: {{ conv 1x1 4 }}; {{ maxpool 3x3/1 pad=1 }} }} }}\n"
              "net n(w = 4) {\n input 4x6x6\n"
              f" {name}: conv 1x1 (divisible(w, 4))\n b(w)\n gap\n fc 3\n}}\n")
    x = torch.randn(2, 4, 6, 6)
    torch.manual_seed(0)
    reference = compile_net(source, backend="torch").eval()
    with torch.no_grad():
        expected = reference(x)
    for backend in ("cpu", "triton"):
        net = compile_net(source, backend=backend).eval()
        net.load_state_dict(reference.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(net(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(RESERVED_BY_EMITTER) + ["x", "training", "super", "max"])
def test_a_parameter_named_as_the_emitters_own_names_is_refused_where_declared(name):
    """Issue 35: parameters named `nn`, `x`, `training` were renamed without a word (`nn_`), so
    `type(net)(nn=8)` failed and `type(net)(heads=20)` set the heads flag. A parameter is a
    keyword of the generated class: it keeps its name, or is refused at its declaration."""
    source = f"block b({name}) {{ conv 1x1 {name} relu }}\nnet n {{\n input 4x6x6\n b(4)\n}}\n"
    with pytest.raises(ArchError) as refused:
        compile_net(source, backend="torch")
    assert refused.value.message.startswith(
        f"parameter '{name}' cannot be a keyword argument of the generated PyTorch class: ")
    assert (refused.value.span.line, refused.value.span.col) == (1, 9)


def test_a_parameter_keeps_its_name_as_the_generated_constructors_keyword():
    """`match` is a soft keyword, `F_` near the emitter's `F`: both are the class's keywords."""
    net = compile_net("net n(match = 4, F_ = 2) {\n input 3x6x6\n conv 1x1 (match * F_)\n}\n",
                      backend="torch")
    assert type(net)(match=3, F_=3).conv1.out_channels == 9


def test_a_rate_is_written_as_the_source_wrote_it():
    """Issue 36: EfficientNet's stochastic-depth rates printed as 0.07500000000000001; the
    emitted net writes each pass's `0.2 * (i + 6) / 16` as `0.2 * 6 / 16` (the same float in
    Python), and a literal as typed."""
    source = lower(analyse(ROOT / "nets/efficientnet_b0.arch")).emitted.source
    assert "MbconvRes(80, 6, 3, 0.2 * 6 / 16)" in source
    assert "MbconvRes(80, 6, 3, 0.2 * 7 / 16)" in source
    assert not re.search(r"\d\.\d*0000000\d|\d\.\d*9999999\d", source)
    net = compile_net(ROOT / "nets/efficientnet_b0.arch", backend="torch")
    rates = [m.p for m in net.modules() if type(m).__name__ == "StochasticDepth"]
    assert rates[2:4] == [0.2 * 6 / 16, 0.2 * 7 / 16]
