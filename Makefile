# `make run` and `make test` each create .venv if missing and install everything first.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch 2.13.0 is the CPU build these machines keep on disk; a bare `torch` would pull a
	# multi-GB CUDA build. Installed first so the project's `torch>=2.4` is already satisfied.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[runtime,dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/archc stats nets/googlenet.arch
	$(VENV)/bin/archc stats nets/vgg_*.arch
	mkdir -p build
	$(VENV)/bin/archc compile nets/googlenet.arch -o build/googlenet.py

test: $(STAMP)
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) bench/frontend.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
