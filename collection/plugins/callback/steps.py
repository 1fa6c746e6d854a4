# Copyright: he-upgrade developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Screen output for operators: the steps, their messages and the recap, without the plumbing."""

from __future__ import annotations

DOCUMENTATION = r"""
name: steps
type: stdout
short_description: Steps, progress lines and summary on screen; plumbing hidden
description:
  - The default screen output without the playbooks' plumbing, for operators who follow an
    upgrade on screen. Every step (module call), message (C(debug) tasks such as progress lines, plans and
    the summary), change, failure and the recap show as with the default output.
  - Hidden are the C(included:) lines, skipped tasks (O(display_skipped_hosts)), and the
    results of the actions in O(plumbing_actions) (facts, includes, reads and writes of the
    playbooks' own state files, job polls) unless they failed.
  - With C(-v) or more, plumbing results and C(included:) lines show as with the default output
    (skipped tasks still follow O(display_skipped_hosts)).
  - Enable it in C(ansible.cfg) (C(stdout_callback = ovirt_he.upgrade.steps)) or with
    C(ANSIBLE_STDOUT_CALLBACK=ovirt_he.upgrade.steps).
author: he-upgrade developers (@he-upgrade)
extends_documentation_fragment:
  - default_callback
  - result_format_callback
options:
  display_skipped_hosts:
    description: Toggle to control displaying skipped task/host results in a task (hidden by default here).
    default: false
  plumbing_actions:
    description:
      - Actions whose results are hidden unless they failed (short names; C(ansible.builtin.) and
        C(ansible.legacy.) prefixes are ignored).
    type: list
    elements: str
    default:
      - set_fact
      - include_tasks
      - include_role
      - include_vars
      - meta
      - stat
      - slurp
      - find
      - async_status
      - wait_for
      - copy
    ini:
      - section: callback_steps
        key: plumbing_actions
    env:
      - name: HE_STEPS_PLUMBING_ACTIONS
requirements:
  - set as the stdout callback in configuration
"""

from ansible.plugins.callback.default import CallbackModule as DefaultCallbackModule


class CallbackModule(DefaultCallbackModule):
    """The default callback, quiet about plumbing unless the run is verbose."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'ovirt_he.upgrade.steps'

    def _is_plumbing(self, result):
        """A (successful) result of a plumbing action, on a run that is not verbose."""
        if self._display.verbosity > 0:
            return False
        action = result.task.action.rsplit('.', 1)[-1]
        return action in self.get_option('plumbing_actions')

    def v2_runner_on_ok(self, result):
        if not self._is_plumbing(result):
            super().v2_runner_on_ok(result)

    def v2_runner_item_on_ok(self, result):
        if not self._is_plumbing(result):
            super().v2_runner_item_on_ok(result)

    def v2_playbook_on_include(self, included_file):
        if self._display.verbosity > 0:
            super().v2_playbook_on_include(included_file)
