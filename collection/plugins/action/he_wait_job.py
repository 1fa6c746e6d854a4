# -*- coding: utf-8 -*-
# Apache-2.0
"""Waits for an async he_* job, showing one progress line per poll; returns the job's result.

The playbooks start a long step with ``async`` and ``poll: 0`` and then wait for it with this
action. One task polls in a flat loop: no include per poll (an include chain grows with the
step's length until Python's recursion limit kills ansible-playbook), and the operator sees one
line per poll (the module's progress file: bytes, rate and ETA of a copy, the engine VM's last
line...) instead of three task headers. The job's own result is returned as this task's
result, so a failed step fails this task with the module's message.

Options: ``jid`` (the ``ansible_job_id`` of the started task), ``progress_file`` (the file the
module rewrites, on the managed host; optional), ``interval`` (seconds between polls, default
10; 0 polls without waiting). The async job's own ``async`` limit bounds the wait.

A poll while the job runs starts no Python on the host: one ``cat`` of the job's status file
(which async_wrapper replaces whole, by a rename) and of the progress file. async_status has
the last word: it is asked as soon as that look does not show a running job.
"""

from __future__ import annotations

import json
import shlex
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

NO_PROGRESS_YET = "started, no progress reported yet"
SEPARATOR = "--he-wait-job-progress--"
# Keys async_status adds to a job's result; the step's own result is returned without them.
ASYNC_KEYS = ("ansible_job_id", "results_file", "started", "finished")


class ActionModule(ActionBase):
    """he_wait_job: the flat poll loop of a long step."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("jid", "progress_file", "interval"))
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(
            argument_spec={
                "jid": {"type": "str", "required": True},
                "progress_file": {"type": "path"},
                "interval": {"type": "int", "default": 10},
            },
        )
        if args["interval"] < 0:
            raise AnsibleActionFail(f"interval must be 0 or more seconds, not {args['interval']}")
        host = task_vars.get("inventory_hostname", "") if task_vars else ""
        started = time.monotonic()
        polls = 0
        while True:
            text = self._look(args["jid"], args["progress_file"])
            if text is None:
                status = self._job_status(args["jid"], task_vars)
                if status.get("finished"):
                    return self._step_result(status, polls)
                if status.get("failed"):
                    # async_status itself failed (no such job, unreadable job file).
                    return status
                text = NO_PROGRESS_YET
            polls += 1
            elapsed_s = int(time.monotonic() - started)
            display.display(f"  [{host}] {elapsed_s} s: {text}")
            self._wait(args["interval"], args["progress_file"], task_vars)

    def _async_dir(self):
        """Where async_wrapper keeps the jobs' status files on the host."""
        return self._remote_expand_user(
            self.get_shell_option("async_dir", default="~/.ansible_async")
        )

    def _job_status(self, jid, task_vars):
        """The job's status as async_status reports it (its result once finished)."""
        return self._execute_module(
            module_name="ansible.legacy.async_status",
            module_args={"jid": jid, "_async_dir": self._async_dir()},
            task_vars=task_vars,
        )

    def _look(self, jid, progress_file):
        """The progress text of the running job, from one `cat` on the host; None when the job
        does not show as running there (finished, failed or unreadable: ask async_status)."""
        job_file = self._connection._shell.join_path(self._async_dir(), jid)
        command = "cat " + shlex.quote(job_file)
        if progress_file:
            command += f"; echo; echo {SEPARATOR}; cat {shlex.quote(progress_file)} 2>/dev/null"
        out = self._low_level_execute_command(command, sudoable=True)
        job_text, _separator, progress = to_text(out.get("stdout", "")).partition(SEPARATOR)
        try:
            job = json.loads(job_text)
        except ValueError:
            return None
        if not (isinstance(job, dict) and job.get("started") == 1 and job.get("finished") == 0):
            return None
        if not progress_file:
            return "running"
        try:
            record = json.loads(progress)
        except ValueError:
            return NO_PROGRESS_YET
        return to_text(record.get("text", NO_PROGRESS_YET)) if isinstance(record, dict) else NO_PROGRESS_YET

    def _wait(self, interval, progress_file, task_vars):
        """Waits `interval` seconds, or less when the progress file says the step finished."""
        if interval == 0:
            return
        if not progress_file:
            time.sleep(interval)
            return
        # On the host, so a finished step is seen at once, not at the end of the interval.
        self._execute_module(
            module_name="ansible.legacy.wait_for",
            module_args={
                "path": progress_file,
                "search_regex": '"finished":true',
                "timeout": interval,
            },
            task_vars=task_vars,
        )

    @staticmethod
    def _step_result(status, polls):
        """The finished job's own result (failed with its message when the step failed)."""
        result = {key: value for key, value in status.items() if key not in ASYNC_KEYS}
        result["polls"] = polls
        return result
