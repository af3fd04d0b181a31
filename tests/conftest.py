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


def has_cuda() -> bool:
    """Whether an NVIDIA device is present, without importing torch (the front-end tests
    need none): its control device exists."""
    return Path("/dev/nvidiactl").exists()


# The kernels run on the CPU in Triton's interpreter where there is no GPU; it must be set
# before Triton is imported. With a GPU they run for real (and the gpu-marked tests too).
if not has_cuda():
    os.environ.setdefault("TRITON_INTERPRET", "1")
