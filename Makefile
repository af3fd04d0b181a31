# `make run` and `make test` each create .venv if missing and install everything first.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-slow test-aot bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch 2.13.0 is the CPU build these machines keep on disk; a bare `torch` would pull a
	# multi-GB CUDA build. Installed first so the project's `torch>=2.4` is already satisfied.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[runtime,graph,export,train,lsp,dev]"
	# torchvision is a test oracle only (tests/torchvision_oracle.py): the release built for
	# torch 2.13.0, without its dependencies (they would pull a CUDA torch).
	$(PY) -m pip install --quiet --no-deps torchvision==0.28.0
	# Graphviz's `dot` renders `archc graph -o x.svg`; best effort (needs root and apt), the
	# tests that render skip without it and .dot output never needs it.
	command -v dot >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { apt-get install -y -q graphviz >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q graphviz >/dev/null 2>&1; }; }; } || \
	    echo "note: Graphviz not installed; archc graph will write .dot files only"
	# TeX Live's pdflatex (with TikZ: texlive-pictures) and poppler's pdftoppm: the tests that
	# compile `archc stats --format latex` and `archc graph --style paper -o fig.tex` and render
	# their pages; best effort, as Graphviz (the tests skip without them).
	{ command -v pdflatex >/dev/null && command -v pdftoppm >/dev/null && \
	    kpsewhich tikz.sty >/dev/null; } || { [ "$$(id -u)" = 0 ] && \
	    command -v apt-get >/dev/null && apt-get install -y -q --no-install-recommends \
	    texlive-latex-base texlive-latex-recommended texlive-pictures poppler-utils \
	    >/dev/null 2>&1; } || \
	    echo "note: pdflatex, TikZ or pdftoppm not installed; the LaTeX tests will skip"
	# Debian's Neovim: a real editor driving `archc lsp` in tests/test_editors.py; best effort
	# (the test skips without it).
	command -v nvim >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    apt-get install -y -q --no-install-recommends neovim >/dev/null 2>&1; } || \
	    echo "note: Neovim not installed; the real-editor test will skip"
	# Node's vscode-tmgrammar-test: the test of the VS Code extension's grammar; best effort
	# (the test skips without it).
	command -v npm >/dev/null && npm install --prefix build/node-tools --no-save --no-audit \
	    --no-fund --silent vscode-tmgrammar-test@0.1.3 >/dev/null 2>&1 || \
	    echo "note: vscode-tmgrammar-test not installed; the editor grammar test will skip"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/archc stats nets/googlenet.arch
	$(VENV)/bin/archc stats nets/vgg_*.arch
	mkdir -p build
	$(VENV)/bin/archc compile nets/googlenet.arch -o build/googlenet.py
	$(VENV)/bin/archc graph nets/googlenet.arch -o build/googlenet.svg
	rm -rf build/nin_digits  # a fresh run each time: the same --out would resume
	$(VENV)/bin/archc train nets/nin_digits.arch --data digits --epochs 30 --out build/nin_digits

# The default run: every behaviour, each sweep over the shipped nets on one net of each op
# family (tests/conftest.py's FAMILIES); `make test-slow` runs the rest of the sweeps. CI runs
# both (.ci/run).
test: $(STAMP)
	$(VENV)/bin/pytest -q -n auto --maxprocesses=4

test-slow: $(STAMP)
	$(VENV)/bin/pytest -q -n auto --maxprocesses=4 -m slow

# Every kernel launch of one net of each op family compiled offline for sm_80 and sm_90 with
# Triton's ptxas (tests/test_aot.py); compiled kernels are cached in ~/.cache/archc/kernels.
test-aot: $(STAMP)
	$(VENV)/bin/pytest -q -n auto --maxprocesses=4 -m aot

bench: $(STAMP)
	$(PY) bench/frontend.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
