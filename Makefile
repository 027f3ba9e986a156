# Two entry points for a fresh clone: `make train` and `make test`. Both create the virtual environment
# (.venv) and install the project into it first, so nothing has to be installed by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Extra arguments for run_train.py, e.g. make train ARGS="--dataset-name ../shared/datasets/cifar10 --epochs 5"
ARGS ?=

.PHONY: install train test clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,tensorboard]'
	touch $@

# Plain python is a one-process accelerate run; `accelerate launch` for several processes (README).
train: install
	$(BIN)/python run_train.py $(ARGS)

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests

clean:
	rm -rf $(VENV) build *.egg-info
