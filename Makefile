# he-upgrade: build the collection, run the demo, run the tests.
# `make test` and `make demo` install what they need on a fresh Debian 12 machine.

SHELL := /bin/bash
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
export PATH := $(VENV)/bin:$(HOME)/.cargo/bin:$(PATH)
# Binaries must run on EL8 hosts: link against glibc 2.28 with zig.
TARGET := x86_64-unknown-linux-gnu
GLIBC := 2.28
RELEASE_DIR := $(ROOT)/target/$(TARGET)/release
MODULES := $(patsubst modules/src/bin/%.rs,%,$(wildcard modules/src/bin/he_*.rs))
COLLECTIONS := $(ROOT)/build/collections
LAB_DIR ?= $(ROOT)/he-lab

.PHONY: setup modules collection test demo demo-rollback bench lint clean

setup:
	@bash tests/tools/setup.sh

modules: setup
	cargo zigbuild --quiet --release --locked -p he-modules --bins --target $(TARGET).$(GLIBC)
	@for m in $(MODULES); do install -m 0755 $(RELEASE_DIR)/$$m collection/plugins/modules/$$m; done

collection: modules
	@rm -rf build/dist && mkdir -p build/dist $(COLLECTIONS)
	ansible-galaxy collection build --force --output-path build/dist collection >/dev/null
	ansible-galaxy collection install --force -p $(COLLECTIONS) build/dist/ovirt_he-upgrade-*.tar.gz >/dev/null
	@echo "collection installed in $(COLLECTIONS)"

test: collection
	cargo build --quiet --locked --workspace --bins
	HE_COLLECTIONS_PATH=$(COLLECTIONS) HE_RELEASE_DIR=$(RELEASE_DIR) \
	  cargo nextest run --locked --workspace --no-fail-fast

bench: collection
	@echo "no benchmarks yet"

clean:
	rm -rf build target
	find collection/plugins/modules -type f ! -name "*.yml" -delete

demo: collection
	ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) HE_FIXTURE_VM_STATUS=tests/fixtures/host/vm-status-here.json \
	  PATH=$(ROOT)/tests/fixtures/host/bin:$$PATH \
	  ansible-playbook -i localhost, tests/e2e/playbooks/facts.yml \
	  -e he_conf=$(ROOT)/tests/fixtures/host/hosted-engine.conf -e log_dir=$(ROOT)/build/logs
