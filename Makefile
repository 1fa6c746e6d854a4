# he-upgrade: build the collection, run the demo, run the tests.
# `make test` and `make demo` install what they need on a fresh Debian 12 machine.

SHELL := /bin/bash
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
export PATH := $(VENV)/bin:$(HOME)/.cargo/bin:$(PATH)
# Modules run on every hosted-engine host, EL7 (glibc 2.17) included: fully static with musl.
TARGET := x86_64-unknown-linux-musl
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(ROOT)/target)
RELEASE_DIR := $(TARGET_DIR)/$(TARGET)/release
MODULES := $(patsubst modules/src/bin/%.rs,%,$(wildcard modules/src/bin/he_*.rs))
COLLECTIONS := $(ROOT)/build/collections
LAB_DIR ?= $(ROOT)/he-lab

.PHONY: setup modules collection test demo demo-rollback bench lint clean

setup:
	@bash tests/tools/setup.sh

modules: setup
	cargo build --quiet --release --locked -p he-modules --bins --target $(TARGET)
	@for m in $(MODULES); do install -m 0755 $(RELEASE_DIR)/$$m collection/plugins/modules/$$m; done

# playbooks/ (the two playbooks, the tasks/ and vars/ they import, examples/) is copied into
# the collection at build time, like the binaries: `ansible-playbook ovirt_he.upgrade.NAME`.
collection: modules
	@rm -rf build/dist collection/playbooks && mkdir -p build/dist $(COLLECTIONS)
	@cp -r playbooks collection/playbooks
	ansible-galaxy collection build --force --output-path build/dist collection >/dev/null
	ansible-galaxy collection install --force -p $(COLLECTIONS) build/dist/ovirt_he-upgrade-*.tar.gz >/dev/null
	@echo "collection installed in $(COLLECTIONS)"

DEBUG_DIR := $(TARGET_DIR)/debug

# One test more than cores: the end-to-end tests spend about a fifth of their time waiting on
# the lab (engine restarts, polls), which a third test on a 2-core machine fills.
TEST_THREADS := $(shell echo $$(( $$(nproc) + 1 )))

test: collection
	cargo build --quiet --locked --workspace --bins
	HE_COLLECTIONS_PATH=$(COLLECTIONS) HE_RELEASE_DIR=$(RELEASE_DIR) HE_LAB_BIN=$(DEBUG_DIR)/he-lab \
	  HE_LAB_SDK_PYTHON=$(ROOT)/.venv-sdk/bin/python HE_ANSIBLE_216_BIN=$(ROOT)/.venv-216/bin \
	  cargo nextest run --locked --workspace --no-fail-fast --test-threads $(TEST_THREADS)

bench: collection
	cargo build --quiet --locked --release -p he-modules --bins
	HE_COLLECTIONS_PATH=$(COLLECTIONS) bash tests/bench/startup.sh
	bash tests/bench/image_copy.sh
	bash tests/bench/backup_validation.sh

clean:
	rm -rf build target
	find collection/plugins/modules -type f ! -name "*.yml" -delete
	rm -rf collection/playbooks

demo: collection
	cargo build --quiet --locked -p he-lab
	$(DEBUG_DIR)/he-lab --dir $(LAB_DIR) down >/dev/null 2>&1 || true
	$(DEBUG_DIR)/he-lab --dir $(LAB_DIR) init --force
	$(DEBUG_DIR)/he-lab --dir $(LAB_DIR) up
	ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) ansible-playbook -i $(LAB_DIR)/inventory.yml \
	  playbooks/hosted_engine_upgrade.yml -e he_leave_running=true
	$(DEBUG_DIR)/he-lab --dir $(LAB_DIR) status

demo-rollback: collection
	$(LAB_DIR)/bin/hosted-engine --vm-poweroff
	ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) ansible-playbook -i $(LAB_DIR)/inventory.yml \
	  playbooks/hosted_engine_rollback.yml
	$(LAB_DIR)/bin/hosted-engine --vm-start
	$(DEBUG_DIR)/he-lab --dir $(LAB_DIR) status
