# -*- coding: utf-8 -*-
# Options every module of ovirt_he.upgrade accepts.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  log_dir:
    description:
      - Directory of the run logs. The module appends to C(<log_dir>/<run_id>.log) (mode 0600,
        secrets masked) so a failed run can be diagnosed.
    type: path
    default: /var/log/ovirt-hosted-engine-upgrade
  run_id:
    description:
      - Names the run log file. The shipped playbooks pass one id for a whole playbook run so
        every step logs into the same file.
      - Default is C(<module name>-<UTC timestamp>-<pid>).
    type: str
"""
