"""Shared fixtures: the repository root, running the CLI in-process, and golden files.

Golden files are compared byte for byte; regenerate them with `pytest --update-golden` and
review the change with `git diff`. A missing golden file fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from archc.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files from the current output")


@pytest.fixture(scope="session", autouse=True)
def kernel_cache(tmp_path_factory):
    """`archc kernels`' result cache in a folder of this run's: the tests compile what they
    check, and never write to the user's ~/.cache."""
    old = os.environ.get("ARCHC_CACHE_DIR")
    os.environ["ARCHC_CACHE_DIR"] = str(tmp_path_factory.mktemp("archc-cache"))
    yield
    if old is None:
        os.environ.pop("ARCHC_CACHE_DIR", None)
    else:
        os.environ["ARCHC_CACHE_DIR"] = old


@pytest.fixture
def golden(request):
    """golden(path, text): compare `text` with the file at `path` (or rewrite it)."""
    update = request.config.getoption("--update-golden")

    def compare(path: Path, text: str) -> None:
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert path.exists(), f"missing golden file {path}; run pytest --update-golden"
        assert text == path.read_text(), f"output differs from {path}"

    return compare


@pytest.fixture
def archc(capsys, monkeypatch):
    """archc(*args) -> (exit status, stdout, stderr), run in-process from the repository root."""
    monkeypatch.chdir(ROOT)

    def run(*args: str) -> tuple[int, str, str]:
        try:
            status = main(list(args))
        except SystemExit as exit:  # argparse's usage errors and --help
            status = exit.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


def nets() -> list[str]:
    return sorted(p.name for p in (ROOT / "nets").glob("*.arch"))


# One shipped net of each op family (inception and LRN, mlpconv, bn (ResNet's), basic and
# bottleneck residuals, grouped convs, dense concats, fire modules, inverted residuals, SE
# gates and hardswish, stochastic depth, shuffles and chunks, layer norm and layer scale,
# asymmetric windows, adaptive pools): a sweep over every net runs these by default and the
# others under `-m slow`, which CI runs too (.ci/run).
FAMILIES = frozenset({
    "alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "googlenet",
    "googlenet_torchvision", "inception_v3", "mnasnet0_5", "mobilenet_v2", "mobilenet_v3_small",
    "nin_cifar10", "regnet_x_400mf", "regnet_y_400mf", "resnet18", "resnext50_32x4d",
    "shufflenet_v2_x0_5", "squeezenet1_1", "vgg_a_lrn"})


def sweep(names: list[str]) -> list:
    """`names` as test parameters, each beyond one net of a family marked `slow`."""
    return [name if name.removesuffix(".arch") in FAMILIES else
            pytest.param(name, marks=pytest.mark.slow) for name in names]


def has_cuda() -> bool:
    """Whether an NVIDIA device is present, without importing torch (the front-end tests
    need none): its control device exists."""
    return Path("/dev/nvidiactl").exists()


# The kernels run on the CPU in Triton's interpreter where there is no GPU; it must be set
# before Triton is imported. With a GPU they run for real (and the gpu-marked tests too).
if not has_cuda():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Under pytest-xdist (`make test`: a worker a core) each worker computes on one thread: two
# workers of two threads each on two cores ran the training tests twice as slowly. Set before
# torch starts, here and in the processes the tests start.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
