# make run   create .venv, install, build the index if missing or stale, serve http://127.0.0.1:7860
#            (another address or port: make run HOST=0.0.0.0 PORT=8080)
# make test  create .venv, install, run the tests
# make bench speed, scale and incremental-index benchmarks (~35 min): bench/results/*.json and bench/RESULTS.md
# make quality  retrieval quality of every baseline and the default on every corpus (long): bench/quality.md
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
TORCH   = torch==2.13.0
HOST   ?= 127.0.0.1
PORT   ?= 7860

.PHONY: install run test test-fast index bench quality clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# CPU torch first: the project's own range would otherwise pull a CUDA build. The editable install
# puts the checkout on sys.path ("compat"), so `import qa` finds the package even from the folder
# that holds the checkout (where the checkout folder itself, named qa/, would shadow it).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,milvus]' --config-settings editable_mode=compat
	touch $@

install: $(VENV)/.installed

run: install
	HF_HUB_OFFLINE=1 $(BIN)/qa serve --host $(HOST) --port $(PORT)

index: install
	HF_HUB_OFFLINE=1 $(BIN)/qa index

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

test-fast: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not model"

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.run_all

# The Debian collections are installed first when apt allows it; a collection that is missing is skipped.
quality: install
	-HF_HUB_OFFLINE=1 $(BIN)/python -m bench.corpora.install
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.quality

clean:
	rm -rf $(VENV) index/CURRENT index/gen-* index/.lock index/.cache
