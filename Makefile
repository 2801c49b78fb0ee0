# kmipops.psmdb developer and CI entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= $(CURDIR)/.venv
BIN := $(VENV)/bin
COLLECTIONS := $(CURDIR)/.build/collections
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export PATH := $(BIN):$(PATH)
# Some machines set PYTHONDONTWRITEBYTECODE; then every ansible-playbook and module run
# recompiles ansible-core, which makes the suites several times slower.
unexport PYTHONDONTWRITEBYTECODE
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider
DOCS_VENV := $(CURDIR)/.build/docs-venv

.PHONY: help host-packages venv collection-link test-collections lint ruff ansible-lint changelog-lint docs-lint sanity units integration \
        integration-kmip integration-playbooks emulator images molecule molecule-rotation molecule-encrypt-existing \
        molecule-rotation-faults molecule-rotation-faults-destroy test-rotation build test lab lab-destroy bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

host-packages: ## Debian packages the tests and the lab need (podman, debootstrap...), when missing
	tests/host-packages.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt | host-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

$(VENV)/.molecule: $(VENV)/.installed requirements-molecule.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements-molecule.txt
	touch $@

venv: $(VENV)/.installed ## create .venv with the controller and test tooling

collection-link: ## make the checkout visible to Ansible as kmipops.psmdb
	mkdir -p $(COLLECTIONS)/ansible_collections/kmipops
	ln -sfn $(CURDIR) $(COLLECTIONS)/ansible_collections/kmipops/psmdb

ruff: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-collections: venv ## test-only collections (containers.podman, community.crypto...) into .build/test-collections
	$(BIN)/python tests/install_test_collections.py $(CURDIR)/.build/test-collections

ansible-lint: venv collection-link test-collections
	ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS):$(CURDIR)/.build/test-collections \
	  $(BIN)/ansible-lint --profile production --offline

changelog-lint: venv ## changelog fragments valid, and the next release's notes render (.build/changelog-preview)
	tests/changelog-check.sh

$(DOCS_VENV)/.installed: requirements-docs.txt
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-docs.txt
	touch $@

docs-lint: venv collection-link $(DOCS_VENV)/.installed ## the docs as the Ansible docs site renders them: plugins, roles, docs/docsite (antsibull-docs)
	cd $(COLLECTIONS)/ansible_collections/kmipops/psmdb && \
	  $(DOCS_VENV)/bin/antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs .

lint: ruff ansible-lint changelog-lint docs-lint ## ruff, ansible-lint (production profile), changelog fragments, docs

sanity: venv ## ansible-test sanity, offline
	tests/sanity/run.sh

units: venv collection-link ## unit tests (no network)
	PYTHONPATH=$(COLLECTIONS) $(PYTEST) tests/unit

integration: integration-kmip integration-playbooks ## all integration tests

# mongod.conf playbooks, the kmip_prereqs role, the built tarball: on 127.0.21.0/24 so that they
# run beside the rest (the KMIP modules, on 127.0.20.0/24); a new test file lands in the rest.
INTEGRATION_PLAYBOOKS := tests/integration/test_mongod_kmip_config_playbook.py \
  tests/integration/test_kmip_prereqs_role.py tests/integration/test_build_install.py

integration-kmip: venv collection-link ## integration: KMIP modules, the test lab, and any other test file
	PYTHONPATH=$(COLLECTIONS):$(CURDIR)/tests $(PYTEST) tests/integration $(addprefix --ignore=,$(INTEGRATION_PLAYBOOKS))

integration-playbooks: venv collection-link ## integration: mongod.conf playbooks, kmip_prereqs, build and install
	KMIPLAB_NET=127.0.21 PYTHONPATH=$(COLLECTIONS):$(CURDIR)/tests $(PYTEST) $(INTEGRATION_PLAYBOOKS)

emulator: venv test-collections ## conformance tests of the PSMDB emulator
	PYTHONPATH=$(CURDIR)/tests/psmdb_emulator:$(CURDIR)/tests $(PYTEST) tests/psmdb_emulator/tests

images: venv host-packages ## build (or reuse cached) podman test host images
	tests/images/build.sh

molecule: $(VENV)/.molecule images ## Molecule base scenario: 2 KMIP servers + 3-member replica set
	molecule/run.sh test -s default

# The playbook whose rotation the scenario judges: the collection's (kmip_rotation role; verify
# also runs its check mode and a key-age re-run); molecule/rotation/manual_rotation.yml is the
# by-hand baseline. Its extra arguments, and the negative tests.
KMIPOPS_ROTATION_PLAYBOOK ?= playbooks/rotate_master_key.yml
KMIPOPS_ROTATION_PLAYBOOK_ARGS ?=
KMIPOPS_ROTATION_NEGATIVE_TESTS ?= true
# Failed (never acknowledged) inserts tolerated during the rotation. Real mongod (4.4+) labels
# NotWritablePrimary "RetryableWriteError", so the driver retries the insert caught by each
# step-down; today's emulator does not label it (one failed insert per set: 2). Set it to 0
# when the stricter emulator (errorLabels) is merged.
KMIPOPS_ROTATION_MAX_WRITE_ERRORS ?= 0
molecule-rotation: $(VENV)/.molecule images ## Molecule rotation scenario: config-server + shard sets, rotation judged from outside
	KMIPOPS_ROTATION_PLAYBOOK='$(KMIPOPS_ROTATION_PLAYBOOK)' KMIPOPS_ROTATION_PLAYBOOK_ARGS='$(KMIPOPS_ROTATION_PLAYBOOK_ARGS)' \
	  KMIPOPS_ROTATION_NEGATIVE_TESTS='$(KMIPOPS_ROTATION_NEGATIVE_TESTS)' \
	  KMIPOPS_ROTATION_MAX_WRITE_ERRORS='$(KMIPOPS_ROTATION_MAX_WRITE_ERRORS)' molecule/run.sh test -s rotation

# Issue 12: existing data (plain and key file) moved to KMIP by rolling initial sync, judged from
# outside. Own range 127.0.14.0/24 and prefix kmipops-enc-: take /tmp/kmipops-lock-molecule-encrypt.
molecule-encrypt-existing: $(VENV)/.molecule images ## Molecule encrypt-existing scenario: plain + key-file sets converted to KMIP under a writer
	molecule/run.sh test -s encrypt-existing

# Issue 11's fault scenarios: the collection's fleet playbook (KMIPOPS_FAULTS_ROTATION_PLAYBOOK,
# default playbooks/rotate_master_key.yml) under dead KMS, a member that does not come back, no
# electable secondary and a leftover key.db.rotation, judged from outside (tests/rotation_faults).
# Its own hosts: 127.0.15.0/24, containers kmipops-flt-*; wrap it in
# `flock /tmp/kmipops-lock-molecule-faults`. About 15 minutes (docs/testing.md).
FAULTS_PYTHONPATH := $(COLLECTIONS):$(CURDIR)/tests:$(CURDIR)/tests/rotation_faults:$(CURDIR)/molecule/shared/files
molecule-rotation-faults: venv collection-link test-collections images ## rotation fault scenarios (dead KMS, member lost, no electable secondary, leftover key.db.rotation)
	PYTHONPATH=$(FAULTS_PYTHONPATH) $(PYTEST) tests/rotation_faults

molecule-rotation-faults-destroy: venv collection-link test-collections ## remove hosts left by KMIPOPS_FAULTS_KEEP=1 (kmipops-flt-*)
	source molecule/shared/env.sh && KMIPOPS_TEST_PREFIX=kmipops-flt- KMIPOPS_TEST_NET=127.0.15 \
	  KMIPOPS_TEST_FLEET=cfg:configsvr,rs1:shardsvr KMIPOPS_TEST_STATE_DIR=$$(mktemp -d) \
	  ansible-playbook -i molecule/shared/inventory/hosts.yml -i molecule/rotation/inventory/fleet.py molecule/rotation/destroy.yml

# The long scenarios that make test leaves out (docs/testing.md times them): the rotation scenario
# (about 25-40 min on a loaded 2-core machine: with it make test would pass its 45 min budget), its
# fault scenarios and the conversion of existing data. Each has its own address range and lock.
test-rotation: ## rotation scenario, its fault scenarios, encrypt-existing (not in make test: over 1 h together)
	flock /tmp/kmipops-lock-molecule-rotation $(MAKE) molecule-rotation
	flock /tmp/kmipops-lock-molecule-faults $(MAKE) molecule-rotation-faults
	flock /tmp/kmipops-lock-molecule-encrypt $(MAKE) molecule-encrypt-existing

build: venv ## build the collection tarball into .build/dist
	mkdir -p .build/dist
	ansible-galaxy collection build --force --output-path .build/dist .

# The suites are independent (each uses its own loopback range) and mostly wait (downloads,
# KMIP and replica-set timeouts), so `make test` runs TEST_JOBS of them at a time, longest
# first. Molecule (with the image build it needs) goes first: it is the longest chain.
# A failed suite does not stop the others: each runs through tests/run-suite.sh, which writes
# its output to .build/test-logs/<suite>.log as it goes and prints it as one block when the
# suite ends; tests/suite-summary.sh then prints one table (suite, status, rc, duration) and
# fails when any suite failed. TEST_SUITES may name any target.
TEST_JOBS ?= 3
TEST_SUITES := molecule sanity integration-kmip emulator integration-playbooks units ansible-lint docs-lint ruff changelog-lint
TEST_LOGS := $(CURDIR)/.build/test-logs
SUITE_TARGETS := $(addprefix suite-,$(TEST_SUITES))
.PHONY: $(SUITE_TARGETS)

test: ## what CI runs: every suite of TEST_SUITES, TEST_JOBS at a time, then a summary
	$(MAKE) venv collection-link test-collections
	rm -rf $(TEST_LOGS)
	mkdir -p $(TEST_LOGS)
	$(MAKE) -k -j$(TEST_JOBS) $(SUITE_TARGETS) || true
	tests/suite-summary.sh $(TEST_LOGS) $(TEST_SUITES)

$(SUITE_TARGETS): suite-%:
	tests/run-suite.sh $(TEST_LOGS) $* $(MAKE)

lab: $(VENV)/.molecule images ## embedded lab: PyKMIP + emulated 3-member replica set, then the main playbook
	playbooks/lab/up.sh

lab-destroy: ## remove the lab and everything it created
	playbooks/lab/down.sh

bench: venv collection-link ## benchmarks (ratios against a baseline in the same run)
	PYTHONPATH=$(COLLECTIONS):$(CURDIR)/tests $(BIN)/python bench/run_all.py

clean: ## remove build products (not the venv)
	rm -rf .build
