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
      - A directory that cannot be created or written (a file, a looping link) fails the task
        before the module does anything.
    type: path
    default: /var/log/ovirt-hosted-engine-upgrade
  run_id:
    description:
      - Names the run log file. The shipped playbooks pass one id for a whole playbook run so
        every step logs into the same file.
      - Default is C(<module name>-<UTC timestamp>-<pid>).
    type: str
  progress_file:
    description:
      - A file (mode 0600) the module rewrites while it works, holding one JSON object with the
        keys C(module), C(text), C(finished), C(failed), C(updated) and C(pid). C(text) says what
        it is doing; a copy shows bytes done, percent, rate and ETA, every second. The last
        record has C(finished=true) and the module's message.
      - For long steps started with C(async) and C(poll=0), so a playbook can show the
        operator the progress while it waits (the shipped playbooks do, every 10 s).
      - Written in check mode too, like the run log. Secrets are masked.
      - A path that exists as something other than a regular file, cannot be looked at (a
        looping link) or is in a missing directory fails the task before the module does
        anything.
    type: path
"""
