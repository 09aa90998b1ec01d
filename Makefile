# The two entry points of the README; each installs what it needs first.
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
DEMO_DIR ?= /tmp/genet-demo
PYTEST_ARGS ?=

.PHONY: deps guest demo demo-stop check unit integration

deps:
	GENET_VENV=$(VENV) autotools/install-deps

# the test guest is downloaded (apt-get download) before any dev cluster exists
guest: deps
	$(PY) tools/build-test-guest

demo: guest
	PATH=$(VENV)/bin:$$PATH $(PY) tools/demo --dir $(DEMO_DIR)

demo-stop: deps
	PATH=$(VENV)/bin:$$PATH $(PY) tools/dev-cluster stop --dir $(DEMO_DIR)

check: guest
	PATH=$(VENV)/bin:$$PATH $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) test

unit: deps
	PATH=$(VENV)/bin:$$PATH $(PY) -m pytest -q -p no:cacheprovider test/unit
