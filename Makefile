# Every target builds its own virtual environment from nothing (.venv), so a fresh clone needs only make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORK ?= work
SEED ?= 0
PORT ?= 8765

.PHONY: setup browser test demo clean

setup: $(VENV)/.installed

# torch and torchvision first, pinned to the releases this machine serves from disk (the CPU wheels on
# PyPI's index for 2.13 do not match torchvision); then the project and its dev extra.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The report test drives a real browser: Chromium and its WebDriver from Debian, installed here so that a fresh
# machine (CI runs as root) needs nothing by hand; already installed, this does nothing.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }

test: setup browser
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/ccs-bench demo --work $(WORK) --seed $(SEED) --port $(PORT)

clean:
	rm -rf $(VENV) $(WORK)
