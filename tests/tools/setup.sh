#!/usr/bin/env bash
# Installs everything the build, the lab and the tests need on a Debian 12 machine.
# Idempotent and quiet when everything is already there.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
say() { printf 'setup: %s\n' "$*" >&2; }
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

apt_packages=(qemu-utils libguestfs-tools genisoimage xorriso e2fsprogs fdisk openssh-server openssh-client binutils python3-venv
  python3-dev libxml2-dev libcurl4-openssl-dev libssl-dev curl musl-tools
  fuse3  # the lab's root-squashing storage mount (fusermount3 when not root)
  iproute2  # the lab's engine VM network namespace (ip netns, veth)
  util-linux  # nsenter: the engine VM's sshd enters only the lab's network namespace
  postgresql-client)  # pg_restore: the lab's engine-backup restore reads real pg_dump archives
missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing apt packages: ${missing[*]}"
  sources=/etc/apt/sources.list.d/debian.sources
  # libguestfs needs a newer qemu than bookworm ships (DEVELOPERS.md recipe).
  if [ -f "$sources" ] && ! grep -q 'bookworm-backports' "$sources"; then
    $sudo_cmd sed -i '0,/^Suites: bookworm bookworm-updates/s//Suites: bookworm bookworm-updates bookworm-backports/' "$sources"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
  $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv="$root/.venv"
if [ ! -x "$venv/bin/ansible-playbook" ] || [ ! -x "$venv/bin/molecule" ] || [ ! -x "$venv/bin/ansible-lint" ]; then
  say "creating Python venv in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'ansible-core>=2.16,<2.20' ansible-lint molecule
fi

# ansible-core 2.16, the last that manages Python 2.7 and 3.6 hosts (EL7, EL8's platform-python):
# the end-to-end tests run the upgrade with it too.
venv_216="$root/.venv-216"
if ! "$venv_216/bin/python" -c 'import sys, ansible.release; sys.exit(not ansible.release.__version__.startswith("2.16."))' 2>/dev/null; then
  say "creating the ansible-core 2.16 venv in $venv_216"
  python3 -m venv "$venv_216"
  "$venv_216/bin/pip" install -q --disable-pip-version-check 'ansible-core>=2.16,<2.17'
fi

# The modules are static musl binaries: they run on any x86_64 Linux host, EL7 included.
if ! rustup target list --installed | grep -x x86_64-unknown-linux-musl >/dev/null; then
  say "adding the Rust target x86_64-unknown-linux-musl"
  rustup target add x86_64-unknown-linux-musl
fi

# ansible-builder: a test checks that the execution environment definition gives a build context.
if [ ! -x "$venv/bin/ansible-builder" ]; then
  say "installing ansible-builder"
  "$venv/bin/pip" install -q --disable-pip-version-check 'ansible-builder>=3.1,<4'
fi

# ansible-test sanity bootstraps pip into each of its venvs with a script it downloads from a
# host these machines cannot reach (get_pip_<its pip version>.py, cached under
# ~/.ansible/test/cache): Python's own ensurepip does the same offline.
pip_version=$("$venv/bin/python" -c 'import sys, types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="%d.%d" % sys.version_info[:2]))["pip"])')
get_pip="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -f "$get_pip" ]; then
  mkdir -p "$(dirname "$get_pip")"
  printf 'import ensurepip\n\nensurepip.bootstrap(upgrade=True)\n' >"$get_pip"
fi

# The official oVirt Python SDK, to prove the lab's engine speaks what real clients expect.
sdk_venv="$root/.venv-sdk"
if ! "$sdk_venv/bin/python" -c 'import ovirtsdk4' >/dev/null 2>&1; then
  say "creating the oVirt SDK venv in $sdk_venv"
  python3 -m venv "$sdk_venv"
  "$sdk_venv/bin/pip" install -q --disable-pip-version-check 'ovirt-engine-sdk-python>=4.4,<5'
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest"
  cargo install --quiet --locked cargo-nextest
fi
