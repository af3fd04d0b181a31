"""The second round of hostile input (issue 35): each of these was a traceback, a hang or a
10 TB allocation; now a working module or a clear error."""

from __future__ import annotations

import json
import os

import pytest
import torch

from archc.backends.triton import aot
from archc.codegen.lower import compile_net


@pytest.mark.parametrize("channels", [1, 2, 3, 8])
def test_an_lrn_window_wider_than_the_channels_on_the_cpu_backend(channels):
    source = f"net l {{ input {channels}x6x6; lrn 9; gap; fc 3 }}"
    torch.manual_seed(0)
    reference = compile_net(source).eval()
    fused = compile_net(source, "cpu").eval()
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(2, channels, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), reference(x), rtol=1e-5, atol=1e-6)


def test_an_empty_checkpoint_is_a_usage_error(archc, tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    status, out, err = archc("weights", "nets/resnet18.arch", "--torchvision", str(empty),
                             "-o", str(tmp_path / "out.pt"))
    assert status == 2
    assert err.strip() == f"archc: error: {empty}: not a readable checkpoint (EOFError)"


@pytest.mark.parametrize("option, status, message", [
    (["--seed", "99999999999999999999"], 2,
     "argument --seed: expected an integer from 0 to 9223372036854775807, got "
     "99999999999999999999"),
    (["--crop-pad", "100000"], 1,  # known once the data is: a data error
     "--crop-pad 100000 is more than the input's 8x8 pixels: give at most 8"),
])
def test_train_options_out_of_range_are_refused_before_any_step(archc, tmp_path, option,
                                                                status, message):
    exit, out, err = archc("train", "nets/nin_digits.arch", "--data", "digits", "--epochs",
                           "1", "--out", str(tmp_path / "run"), *option)
    assert exit == status and message in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.parametrize("entry", [
    "not json", "[]", '{"error": 5}', '{"usage": "x"}',
    '{"usage": {"shared": "0", "registers": 32, "spill_bytes": 0, "num_warps": 4, '
    '"tensor_cores": "mma", "widest_load": 16, "widest_store": 16}}',
])
def test_a_malformed_kernels_cache_entry_is_a_miss(tmp_path, entry):
    (tmp_path / "key.json").write_text(entry)
    assert aot._cached(tmp_path, "key") is None


def test_a_well_formed_kernels_cache_entry_is_a_hit(tmp_path):
    usage = {"shared": 0, "registers": 32, "spill_bytes": 0, "num_warps": 4,
             "tensor_cores": "mma", "widest_load": 16, "widest_store": 16}
    (tmp_path / "key.json").write_text(json.dumps({"usage": usage}))
    assert aot._cached(tmp_path, "key") == aot.Usage(**usage)
    (tmp_path / "key.json").write_text(json.dumps({"error": "out of resources"}))
    assert aot._cached(tmp_path, "key") == aot.Failure("out of resources")


def test_a_converted_checkpoint_fine_tunes_and_evaluates_from_the_command_line(archc, tmp_path):
    """`archc weights` writes a bare state_dict; `archc train --init-from` and `archc eval
    --checkpoint` take it (they asked for an archc checkpoint's 'model' entry)."""
    torch.manual_seed(0)
    state = compile_net("nets/nin_digits.arch").state_dict()
    modules = list(dict.fromkeys(key.rpartition(".")[0] for key in state))
    published = {f"features.{modules.index(key.rpartition('.')[0])}.{key.rpartition('.')[2]}":
                 value for key, value in state.items()}  # another library's names
    torch.save(published, tmp_path / "published.pth")
    converted = tmp_path / "converted.pt"
    status, out, err = archc("weights", "nets/nin_digits.arch", "--torchvision",
                             str(tmp_path / "published.pth"), "-o", str(converted))
    assert status == 0, err
    status, out, err = archc("eval", "nets/nin_digits.arch", "--checkpoint", str(converted),
                             "--json", "--confusion", str(tmp_path / "confusion.png"))
    assert status == 0, err
    status, out, err = archc("train", "nets/nin_digits.arch", "--data", "digits", "--epochs",
                             "1", "--init-from", str(converted), "--out", str(tmp_path / "run"))
    assert status == 0, err
    assert f"initialised {len(state)} of {len(state)} tensors from {converted}" in out + err


@pytest.mark.parametrize("option, message", [
    (["--data", "digits:xyz"], "--data digits:xyz: the bundled digits take no folder"),
    (["--amp", "fp16"], "--amp fp16 trains on CUDA only (its loss scaler); on the CPU give "
                        "--amp bf16 or none"),
])
def test_train_options_that_cannot_mean_what_they_say_are_refused(archc, tmp_path, option,
                                                                  message):
    status, out, err = archc("train", "nets/nin_digits.arch", "--epochs", "1", "--out",
                             str(tmp_path / "run"), *option)
    assert status == 1 and message in err


def test_kernels_json_of_a_net_without_triton_launches_is_an_empty_list(archc, tmp_path):
    path = tmp_path / "plain.arch"
    path.write_text("net plain { input 3x8x8; conv 3x3 4 pad=1; fc 3 }\n")
    status, out, err = archc("kernels", str(path), "--json")
    assert status == 0 and json.loads(out)["launches"] == []
    assert "launches no Triton kernel" in err


def test_a_file_that_is_no_source_is_not_echoed(archc, tmp_path):
    """`use "/etc/passwd"` echoed its first line, `archc check /proc/self/environ` the
    environment; a file not named .arch that does not start as a source shows 8 bytes."""
    secret = tmp_path / "secrets.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\npassword=hunter2\n")
    net = tmp_path / "net.arch"
    net.write_text(f'use "{secret}"\nnet n {{ input 3x8x8; fc 3 }}\n')
    status, out, err = archc("check", str(net))
    assert status == 1 and "root:x:0:0" not in err and "hunter2" not in err
    assert f"cannot use '{secret}': not an .arch source (it begins b'root:x:0'); archc reads " \
        ".arch files" in err
    status, out, err = archc("check", "/proc/self/environ")
    assert status == 2 and "cannot read /proc/self/environ: not an .arch source" in err
    assert all(value not in err for value in os.environ.values() if len(value) > 8)
    plain = tmp_path / "net.txt"  # a source under another name still reads
    plain.write_text("# a net\nnet n { input 3x8x8; fc 3 }\n")
    assert archc("check", str(plain))[0] == 0


def test_block_uses_that_read_in_channels_infer_each_layer_once(monkeypatch):
    """8,000 uses of a block whose default reads in_channels took 180 s to check: each use
    walked the whole graph built so far. Counted, not timed: each layer's flatness and shape
    is worked out once."""
    from archc.ir import shapes  # the shapes of a graph being built
    from archc.ir.build import build_graph
    from archc.lang.loader import load

    counted = {"flat": 0, "infer": 0}
    for name in counted:
        original = getattr(shapes, f"_{name}")
        monkeypatch.setattr(shapes, f"_{name}", lambda *a, name=name, original=original:
                            counted.__setitem__(name, counted[name] + 1) or original(*a))
    path = "<uses>.arch"
    uses = 400
    source = "block b(c = in_channels) { conv 1x1 c }\nnet n { input 4x4x4\n" + \
        "b()\n" * uses + "}\n"
    graph = build_graph(load(path, source))
    assert len(graph) == uses + 1
    assert counted == {"flat": uses, "infer": uses}  # the input and each conv but the last


def test_a_statement_of_millions_of_words_is_refused_before_parsing(archc, tmp_path):
    """A 12 MB line of arguments took a minute and 2.2 GB before 'too many arguments'."""
    path = tmp_path / "long.arch"
    path.write_text("net n {\n input 3x8x8\n conv 1x1 " + "4 " * 1_000_000 + "\n}\n")
    status, out, err = archc("check", str(path))
    assert status == 1
    assert err.splitlines()[0] == f"{path}:3:2: error: a statement of more than 1,000 words: " \
        "no statement takes so many arguments"


def test_a_missing_svhn_file_is_named_as_missing(archc, tmp_path):
    status, out, err = archc("train", "nets/nin_digits.arch", "--data", f"svhn:{tmp_path}",
                             "--resize", "--gray-to-rgb", "--out", str(tmp_path / "run"))
    assert status == 1
    assert f"{tmp_path / 'train_32x32.mat'}: no such file (SVHN's train_32x32.mat)" in err
