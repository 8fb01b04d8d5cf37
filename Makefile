# Developer entry points. `make help` lists them.
#
# Output rule: targets whose stdout is meant for `$(...)` or `eval` (token, env) print only
# that; everything else the Makefile says (venv bootstrap, pip) goes to stderr.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The venv is (re)installed when any requirements file is newer than this stamp.
STAMP := $(VENV)/.requirements.stamp
# The benchmark's Celery + Redis baseline shares the venv (same Google client libraries).
REQUIREMENTS := $(sort $(wildcard functions/*/requirements.txt)) benchmarks/baseline/requirements.txt requirements-dev.txt cli/requirements.txt
# The command-line client (cli/), installed editable so `.venv/bin/creations` runs this checkout.
CLI_PACKAGE := cli/pyproject.toml
PIP_LOG := $(VENV)/pip-install.log

PYTEST := $(PY) -m pytest
# checkov has a venv of its own: its bc-python-hcl2 clashes with python-hcl2 in .venv.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.requirements.stamp
TERRAFORM ?= terraform
LINT_PATHS := shared functions tools tests benchmarks cli
TYPECHECK_PATHS := shared functions tools tests benchmarks cli

.PHONY: help venv web dev demo test test-unit test-component test-integration test-browser test-web pytest lint fmt typecheck token grant env clean distclean
.PHONY: build terraform-check checkov-venv

help:
	@echo "make dev                        run emulators + every function, wired (Ctrl-C stops)"
	@echo "make demo                       the whole event chain against a running make dev"
	@echo "make test                       lint, typecheck and the whole test suite"
	@echo "make test-unit | test-component | test-integration   one tier of tests/ (see tests/README.md)"
	@echo "make test-browser | test-web    the drafts page in headless Chromium | its pure JS modules under node --test"
	@echo "make web                        build the drafts page (web/, npm ci when the lockfile changed)"
	@echo "make lint | fmt | typecheck"
	@echo "make build                      one zip per function in dist/ (+ dist/manifest.json)"
	@echo "make terraform-check            terraform fmt -check, checkov and the provider-schema check (tools/tfcheck) over terraform/"
	@echo "make bench                      the local stack against a Celery + Redis baseline -> docs/benchmarks.md"
	@echo "                                  (BENCH_ARGS='--sequential 20 --stacks suite' for a quick one)"
	@echo "make bench-stitch                time stitch() against plain ffmpeg (not a test)"
	@echo "make -s token USER=<uid>        print an ID token for <uid> (dev stack's signer)"
	@echo "make -s grant USER=<uid> TOKENS=<n>"
	@echo 'eval "$$(make -s env)"           export the running dev stack'"'"'s variables'
	@echo "make clean | distclean          caches and logs | also the venvs, .dev, dist and build"

# --- virtualenv ----------------------------------------------------------------------------

venv: $(STAMP)

# pip's output goes to a log (shown only on failure) so a bootstrap inside `$(make -s token)`
# cannot leak onto stdout. The stamp is touched last: an interrupted install re-runs.
# The client's dependencies come from the requirements above (--no-deps); its build backend
# (setuptools, pinned in cli/pyproject.toml) is fetched into pip's isolated build environment,
# since the venv's own setuptools cannot build an editable wheel.
$(STAMP): $(REQUIREMENTS) $(CLI_PACKAGE)
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON) ..." >&2; $(PYTHON) -m venv $(VENV) >&2; }
	@echo "installing $(REQUIREMENTS) and the creations CLI into $(VENV) (log: $(PIP_LOG)) ..." >&2
	@{ $(PY) -m pip install --disable-pip-version-check -q $(addprefix -r ,$(REQUIREMENTS)) && \
		$(PY) -m pip install --disable-pip-version-check -q --no-deps -e ./cli; } \
		>$(PIP_LOG) 2>&1 || { tail -n 30 $(PIP_LOG) >&2; echo "pip install failed; full log: $(PIP_LOG)" >&2; exit 1; }
	@touch $@

# --- the drafts page (web/) ---------------------------------------------------------------

# Like the venv: `npm ci` re-runs when the lockfile is newer than its stamp; its output goes
# to stderr. The bundle is rebuilt when a source or the install changed.
WEB := web
WEB_STAMP := $(WEB)/node_modules/.package-lock.stamp
WEB_BUNDLE := $(WEB)/public/build/app.js
WEB_SOURCES := $(wildcard $(WEB)/src/*.js)

web: $(WEB_BUNDLE)

$(WEB_STAMP): $(WEB)/package-lock.json $(WEB)/package.json
	@command -v npm >/dev/null || { echo "npm is not on PATH (Node 20+ builds the drafts page)" >&2; exit 1; }
	@echo "installing $(WEB)/ dependencies (npm ci) ..." >&2
	@cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error >&2
	@touch $@

$(WEB_BUNDLE): $(WEB_STAMP) $(WEB_SOURCES)
	@cd $(WEB) && npm run -s build >&2

# The page's pure modules (prices, error messages) under Node's test runner; the page itself
# is tested in a browser (test-browser).
test-web: $(WEB_STAMP)
	@cd $(WEB) && npm test -s

# --- running -------------------------------------------------------------------------------

dev: venv web
	@$(PY) -m tools.stack.dev

# Needs `make dev` running in another shell; says so and exits 1 otherwise.
demo: venv
	@$(PY) -m tools.stack.demo

# USER is also the login name in every shell's environment, so `make token` without USER=...
# would silently mint a token for whoever is logged in. Require it (and TOKENS) from the
# command line, checked when the Makefile is read so nothing runs first.
ifneq ($(filter token grant,$(MAKECMDGOALS)),)
ifneq ($(origin USER),command line)
$(error usage: make -s $(firstword $(filter token grant,$(MAKECMDGOALS))) USER=<uid>$(if $(filter grant,$(MAKECMDGOALS)), TOKENS=<n>))
endif
endif
ifneq ($(filter grant,$(MAKECMDGOALS)),)
ifneq ($(origin TOKENS),command line)
$(error usage: make -s grant USER=<uid> TOKENS=<n>)
endif
endif

# The values reach the command through the environment, not pasted into the shell line, so
# any characters in them are safe.
token grant: export CLI_USER = $(USER)
grant: export CLI_TOKENS = $(TOKENS)

token: venv
	@$(PY) -m tools.stack.cli token --user "$$CLI_USER"

grant: venv
	@$(PY) -m tools.stack.cli grant --user "$$CLI_USER" --tokens "$$CLI_TOKENS"

env: venv
	@$(PY) -m tools.stack.cli env

# --- checks --------------------------------------------------------------------------------

lint: venv
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)

fmt: venv
	$(PY) -m ruff check --fix $(LINT_PATHS)
	$(PY) -m ruff format $(LINT_PATHS)

typecheck: venv
	$(PY) -m mypy $(TYPECHECK_PATHS)

# pytest exits 5 when it collected no tests. For us that means a broken suite (a bad path, an
# import-mode or marker mistake), never success, so it is turned into a failure that says so.
define run_pytest
rc=0; $(PYTEST) -q $(1) || rc=$$?; \
if [ $$rc -eq 5 ]; then \
	echo "pytest collected no tests from $(or $(1),tests): a suite with no tests is broken" >&2; \
	exit 1; \
fi; \
exit $$rc
endef

test: lint typecheck terraform-check test-web pytest

# The browser tests serve the built page (tests/integration/test_drafts_page.py).
pytest: venv web
	@$(call run_pytest,)

test-unit: venv
	@$(call run_pytest,tests/unit)

test-component: venv
	@$(call run_pytest,tests/component)

test-integration: venv web
	@$(call run_pytest,tests/integration)

test-browser: venv web
	@$(call run_pytest,tests/integration/test_drafts_page.py)

# --- packaging and Terraform -------------------------------------------------------------

# Only the standard library: an infra machine needs python3, not the dev venv.
build:
	@$(PYTHON) -m tools.build

checkov-venv: $(CHECKOV_STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || { echo "creating $(CHECKOV_VENV) with $(PYTHON) ..." >&2; $(PYTHON) -m venv $(CHECKOV_VENV) >&2; }
	@echo "installing requirements-checkov.txt into $(CHECKOV_VENV) (log: $(CHECKOV_VENV)/pip-install.log) ..." >&2
	@$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-checkov.txt \
		>$(CHECKOV_VENV)/pip-install.log 2>&1 || { tail -n 30 $(CHECKOV_VENV)/pip-install.log >&2; echo "pip install failed; full log: $(CHECKOV_VENV)/pip-install.log" >&2; exit 1; }
	@touch $@

# The checks of terraform/ that need no provider download (`terraform validate` would need
# the providers): formatting; checkov with 0 failed checks, every skip justified by a
# `#checkov:skip=ID:reason` comment next to its resource; then tools/tfcheck, validate's
# stand-in, against the providers' published schema (the pinned CDK binding wheels, downloaded
# once into build/tfcheck: ~135 MB, then a ~2 MB schema cache). The rest (consistency with the
# code) are pytest tests in tests/static/.
terraform-check: venv checkov-venv
	@command -v $(TERRAFORM) >/dev/null || { echo "terraform is not on PATH (1.5+ needed for fmt)" >&2; exit 1; }
	@# fmt reads no CLI configuration: pointing it at none keeps a missing one from warning.
	TF_CLI_CONFIG_FILE=/dev/null $(TERRAFORM) fmt -check -recursive -diff terraform
	$(CHECKOV_VENV)/bin/checkov --skip-download --quiet --compact --framework terraform -d terraform
	$(PY) -m tools.tfcheck terraform

# --- benchmarks ----------------------------------------------------------------------------

.PHONY: bench bench-stitch
# Not a test: minutes of load on the emulators (a small run of it is in tests/integration).
# Writes docs/benchmarks.md (between its markers) and build/bench.json.
BENCH_ARGS ?=
bench: venv
	$(PY) -m benchmarks.throughput $(BENCH_ARGS)

bench-stitch: venv
	$(PY) -m benchmarks.stitch_benchmark

# --- housekeeping --------------------------------------------------------------------------

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .dev/logs
	find . \( -path ./$(VENV) -o -path ./$(CHECKOV_VENV) -o -path ./build \) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Also the venvs, .dev (dev signing key included: tokens minted before stop working), the
# build output (dist/) and the function venvs of tests/packaging (build/).
distclean: clean
	rm -rf $(VENV) $(CHECKOV_VENV) .dev dist build $(WEB)/node_modules $(WEB)/public/build
