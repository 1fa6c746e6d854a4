#!/bin/sh
# Runs the official-SDK test against the fake engine: builds a venv with
# ovirt-engine-sdk-python (needs python3-dev and libxml2-dev), then the Rust test
# `engine_sdk`, which starts the engine and runs sdk_check.py with that venv.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${HE_LAB_SDK_VENV:-${CARGO_TARGET_DIR:-$here/../../../../target}/sdk-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import ovirtsdk4' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'ovirt-engine-sdk-python>=4.4,<5'
fi
HE_LAB_SDK_PYTHON="$venv/bin/python" exec cargo test -p he-lab --test engine_sdk -- --nocapture
