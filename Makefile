# The two commands a newcomer runs (see README.md); each sets itself up first.
#   make quickstart   the main job on the embedded data
#   make test         the test suite (what .ci/run runs; the `large` tier: make test-large)
PYTHON ?= python3
VENV   := .venv
# MediaPipe Tasks, the on-device client the tests and the main job load our TFLite files in.
# Installed after the extras, not as one: every mediapipe release pins absl-py~=2.3 and
# tensorflow-model-optimization 0.8.1 pins absl-py~=1.2, so no resolver takes both in one
# install. TFMOT imports absl only in its own tests (BUILD_NOTES.md, "MediaPipe client").
CLIENT := mediapipe==1.2.3
# uv installs what pip would (the same versions but one unused backport) in ~10 s instead of
# ~60, from a cold cache too (BUILD_NOTES.md, "Set-up"). It reads no pip.conf: behind a mirror, set
# UV_DEFAULT_INDEX (or UV_INDEX_URL) as pip's index-url.
UV     := uv==0.13.10
STAMP  := $(VENV)/.installed-$(shell cat setup.py Makefile | cksum | cut -d' ' -f1)

.PHONY: quickstart test test-large setup postgres browser arm clean

setup: $(STAMP)

$(STAMP): setup.py Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q '$(UV)'
	$(VENV)/bin/uv pip install -q --compile-bytecode -p $(VENV)/bin/python -e '.[test]'
	$(VENV)/bin/uv pip install -q --compile-bytecode -p $(VENV)/bin/python '$(CLIENT)'
	$(VENV)/bin/python -c "import mediapipe.tasks.python.vision"
	rm -f $(VENV)/.installed-* && touch $@

quickstart: $(STAMP)
	$(VENV)/bin/effnet quickstart $(ARGS)

# The search's multi-host test (large tier) runs a real PostgreSQL server: Debian's package,
# started by the test itself on a Unix socket (no service, no TCP port). Installed here when
# missing (as root, as CI runs; elsewhere: sudo apt-get install postgresql).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql \
	  >/dev/null; }

# The web app's tests (tests/test_browser.py) open its page in a real browser: Debian's
# chromium, headless, installed here when missing; and the pinned MediaPipe web runtime
# (TASKS_VISION_VERSION in export/webapp.py), `npm pack`ed once into .cache/ (npm: Debian's,
# installed when missing). Nothing of the runtime is committed.
TASKS_VISION := $(shell sed -n 's/^TASKS_VISION_VERSION = "\([^"]*\)".*/\1/p' export/webapp.py)
RUNTIME_TGZ  := .cache/tasks-vision/mediapipe-tasks-vision-$(TASKS_VISION).tgz
browser: $(RUNTIME_TGZ)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
	  >/dev/null; }

$(RUNTIME_TGZ):
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; }
	mkdir -p $(dir $@) && cd $(dir $@) && npm pack --silent @mediapipe/tasks-vision@$(TASKS_VISION)

# The ARM test (tests/test_arm.py, large tier; it skips without this): LiteRT's aarch64 build
# run under user-mode emulation. Debian trixie's qemu-aarch64 (QEMU 10), a bookworm arm64
# Python 3.11 sysroot and the aarch64 wheels, fetched, hash-checked and unpacked into
# .cache/arm/ by tests/arm/setup_arm.py (nothing installed system-wide; x86_64 Linux only).
arm: $(STAMP)
	$(VENV)/bin/python tests/arm/setup_arm.py

# Two pytest-xdist workers: much of a test's time is single-threaded graph tracing. Tests that
# share a trained model stay in one worker (--dist loadgroup, see tests/conftest.py).
test: $(STAMP) browser
	$(VENV)/bin/python -m pytest tests -n 2 --dist loadgroup -m "not large" $(ARGS)

# Everything, the `large` tier included (trained b0, benchmark runs): before resolving an
# issue that touches them.
test-large: $(STAMP) postgres browser
	$(VENV)/bin/python -m pytest tests -n 2 --dist loadgroup $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache runs
