# make test         create .venv, install the pinned requirements, run the tests
# make train-head   train one head end to end as the report's cells train it, seed 0 (HEAD=actv|grad|full|finetune
#                   PROFILE=fashion-mnist; LAYERS=conv4-5 etc., by default the profile's top block)
# make reproduce    every experiment through papermill, then reports/$(PROFILE)/report.html (PROFILE=fashion-mnist)
# make smoke        the same shrunk to minutes (params/smoke.yaml) into reports/$(PROFILE)-smoke: does my setup run?
# make bench        time per training step of every head; writes reports/bench/bench.json
# make lab          JupyterLab on notebooks/ (each notebook runs with its defaults: the quick profile)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= fashion-mnist
HEAD ?= full
LAYERS ?=
# more arguments for reproduce, smoke and train-head, e.g. ARGS='--smoke --set device=cpu'
ARGS ?=
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: test reproduce smoke train-head bench data lab clean-venv

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

# pytest's exit status is the target's: 5 (no tests collected) fails too. Two pytest-xdist
# workers: the end-to-end file (its tests share one reports folder: xdist_group) stays on one,
# which starts it first; every other test goes to whichever worker is free.
test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --dist loadgroup

# Fashion-MNIST comes from Debian's dataset-fashion-mnist (needs root or sudo once), and only for
# a profile that uses it (its heads or its pre-training: the stand-in's fashion-source/-mosaic); other data sets are never downloaded (README, "Data"): a missing file
# is a one-line error naming where to put it.
data: $(VENV)/.installed
	@fashion=$$($(PY) -c "from gradfeat_core.experiments.params import load_params; \
	  from gradfeat_core.experiments.data import FASHION; p = load_params('$(PROFILE)'); \
	  source = p['reproduce']['pretrain'].get('data', {}).get('dataset'); \
	  print(p['data']['dataset'] in FASHION or source in FASHION)" 2>/dev/null); \
	if [ "$$fashion" = True ] && [ ! -d $(FASHION_MNIST) ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq dataset-fashion-mnist || \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; }; fi

# Skips what a previous run finished; safe to interrupt and start again.
reproduce: $(VENV)/.installed data
	$(PY) -m gradfeat_core reproduce --profile $(PROFILE) $(ARGS)

smoke: $(VENV)/.installed data
	$(PY) -m gradfeat_core reproduce --profile $(PROFILE) --smoke $(ARGS)

train-head: $(VENV)/.installed data
	$(PY) -m gradfeat_core train-head --profile $(PROFILE) --head $(HEAD) $(if $(LAYERS),--layers $(LAYERS)) $(ARGS)

bench: $(VENV)/.installed
	$(PY) -m gradfeat_core.experiments.bench

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

clean-venv:
	rm -rf $(VENV)
