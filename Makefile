# The two commands a newcomer runs (see README.md); each sets itself up first.
#   make quickstart   the main job on the embedded data
#   make test         the test suite (what .ci/run runs; the `large` tier: make test-large)
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell cksum setup.py | cut -d' ' -f1)

.PHONY: quickstart test test-large setup clean

setup: $(STAMP)

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

quickstart: $(STAMP)
	$(VENV)/bin/effnet quickstart $(ARGS)

# Two pytest-xdist workers: much of a test's time is single-threaded graph tracing. Tests that
# share a trained model stay in one worker (--dist loadgroup, see tests/conftest.py).
test: $(STAMP)
	$(VENV)/bin/python -m pytest tests -n 2 --dist loadgroup -m "not large" $(ARGS)

# Everything, the `large` tier included (trained b0, benchmark runs): before resolving an
# issue that touches them.
test-large: $(STAMP)
	$(VENV)/bin/python -m pytest tests -n 2 --dist loadgroup $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache runs
