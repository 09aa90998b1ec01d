# The two entry points of the README; each installs what it needs first.
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
DEMO_DIR ?= /tmp/genet-demo
PYTEST_ARGS ?=
# the suite runs in TEST_JOBS processes, each test file in one of them (a file's tests share its
# clusters); pytest's temporary folders are kept short (a node's unix sockets live under them)
TEST_JOBS ?= 4

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
	PATH=$(VENV)/bin:$$PATH $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) --dist loadfile \
		--basetemp=$$(mktemp -d /tmp/gt.XXXXXX) $(PYTEST_ARGS) test

unit: deps
	PATH=$(VENV)/bin:$$PATH $(PY) -m pytest -q -p no:cacheprovider test/unit
