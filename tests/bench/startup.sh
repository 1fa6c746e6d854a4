#!/usr/bin/env bash
# Benchmark of module start-up (SPEC section 10), as figures and ratios measured in one run.
# Prints two tables; see README.md next to this file.
#
#   tests/bench/startup.sh                     (after `make collection`)
#   ROUNDS=20 CALLS=20 RUNS=7 TASKS=30 tests/bench/startup.sh
#
# 1. Module time of a no-op facts call (goal <= 5 ms): the installed he_maintenance_facts run
#    as Ansible runs it (argv[1] = a JSON args file; log_dir and run_id given, as the shipped
#    playbooks give them through module_defaults) on the recorded host fixtures
#    (tests/fixtures/host: fake `hosted-engine` first on PATH, the recorded vdsm `vdsm.py`
#    serving JSON-RPC over STOMP on TLS, as the module tests do). The fake tool it runs is
#    timed alone the same way and subtracted (the TLS session with vdsm is module time):
#    module time = call - fake tool, which still includes the module's own exec (the floor
#    of any exec is shown by /bin/true). Wall time: median of ROUNDS x CALLS single calls;
#    CPU time (user + sys of the module and its children, minus the tools' alike):
#    median of ROUNDS rounds; variants interleaved, in a rotated order every round. When
#    `perf stat` works, also the task-clock of the module process alone (--no-inherit: its
#    children not counted, nothing subtracted). Wall time counts waiting for a CPU: on a busy
#    machine it grows with every sleep and wake-up of the call, see README.md.
# 2. Per-task wall time in a playbook (goal: ratio <= 1.0): TASKS tasks of
#    ovirt_he.upgrade.he_maintenance_facts vs TASKS tasks of ansible.builtin.command running
#    the same fake `hosted-engine --vm-status --json` (changed_when: false), localhost, local
#    connection, Ansible's defaults (no pipelining). Per task = (playbook - empty playbook) /
#    TASKS, medians of RUNS runs, interleaved in a rotated order. Also shown, not part of the
#    goal: the command tasks with pipelining on, and ansible.builtin.debug tasks (Ansible's
#    own per-task cost, nothing run on the host).
# 3. Direct vdsm client vs the vdsm-client path (issue #12), when HE_LAB_BIN names a built
#    he-lab and OLD_MODULES_DIR holds he_maintenance_facts and he_spm_facts built before the
#    direct client (README.md says how): both against one lab of the 4.4 profile (whose
#    vdsm-client is a client of the lab's vdsm), wall time per call, medians of ROUNDS x
#    CALLS, interleaved; ratio direct / vdsm-client path.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${ROUNDS:-10}
CALLS=${CALLS:-20}
RUNS=${RUNS:-5}
TASKS=${TASKS:-30}
COLLECTIONS=${HE_COLLECTIONS_PATH:-$ROOT/build/collections}
FIXTURES=$ROOT/tests/fixtures/host
export LC_ALL=C.UTF-8 # EPOCHREALTIME with a decimal point; Ansible wants UTF-8

MODULE=$COLLECTIONS/ansible_collections/ovirt_he/upgrade/plugins/modules/he_maintenance_facts
if [ ! -x "$MODULE" ]; then
    echo "the collection is not installed in $COLLECTIONS: run \`make collection\` first (or set HE_COLLECTIONS_PATH)" >&2
    exit 2
fi
[ -x "$ROOT/.venv/bin/ansible-playbook" ] && PATH=$ROOT/.venv/bin:$PATH
if ! command -v ansible-playbook > /dev/null; then
    echo "ansible-playbook not found: run \`make setup\`, or put a venv with ansible-core first on PATH" >&2
    exit 2
fi

WORK=$(mktemp -d /tmp/he-bench-startup.XXXXXX)
# vdsm (the module as uid 36) reads the configuration volume the fixture vdsm writes here.
chmod 755 "$WORK"
VDSM_PID= LAB=
cleanup() {
    [ -n "$VDSM_PID" ] && kill "$VDSM_PID" 2> /dev/null
    [ -n "$LAB" ] && "$HE_LAB_BIN" --dir "$LAB" down > /dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
exec 3>&2 # errors from inside timed blocks, whose stderr is redirected
export PATH=$FIXTURES/bin:$PATH HE_FIXTURE_VM_STATUS=$FIXTURES/vm-status-here.json
# The recorded host's vdsm, on a port of its own.
python3 "$FIXTURES/vdsm.py" "$WORK/vdsm_address" & VDSM_PID=$!
for ((i = 0; i < 300; i++)); do [ -s "$WORK/vdsm_address" ] && break; sleep 0.02; done
VDSM_ADDRESS=$(cat "$WORK/vdsm_address")

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ms() { awk -v us="$1" 'BEGIN {printf "%.2f", us / 1e3}'; }
seconds() { awk -v us="$1" 'BEGIN {printf "%.2f", us / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# --- 1. the module alone ---
# The args Ansible writes for this task (ansible-core 2.19), as the module reads them.
cat > args.json << EOF
{"he_conf": "$FIXTURES/hosted-engine.conf", "log_dir": "$WORK/logs", "run_id": "bench",
 "vdsm_address": "$VDSM_ADDRESS", "vdsm_pki_dir": "$FIXTURES/pki",
 "_ansible_check_mode": false, "_ansible_no_log": false, "_ansible_debug": false,
 "_ansible_diff": false, "_ansible_verbosity": 0, "_ansible_version": "2.19.14",
 "_ansible_module_name": "ovirt_he.upgrade.he_maintenance_facts",
 "_ansible_syslog_facility": "LOG_USER", "_ansible_string_conversion_action": "warn",
 "_ansible_selinux_special_fs": ["fuse", "nfs", "vboxsf", "ramfs", "9p", "vfat"],
 "_ansible_socket": null, "_ansible_shell_executable": "/bin/sh",
 "_ansible_keep_remote_files": false, "_ansible_tmpdir": "$WORK/ansible-tmp",
 "_ansible_remote_tmp": "~/.ansible/tmp", "_ansible_ignore_unknown_opts": false}
EOF
"$MODULE" args.json > result.json || true
grep -q '"failed":false' result.json && grep -q '"vm_here":true' result.json \
    || { echo "he_maintenance_facts did not succeed on the fixtures:" >&2; cat result.json >&2; exit 1; }

call() { # VARIANT: one call, output discarded, failure fatal
    case $1 in
    true) /bin/true ;;
    tools) hosted-engine --vm-status --json > /dev/null ;;
    module) "$MODULE" args.json > /dev/null ;;
    esac
}
declare -A WALL CPU WALL_MEDIAN CPU_MEDIAN
round() { # VARIANT: CALLS calls, each timed; CPU time of the round on stderr (bash `time`)
    local i start end
    for ((i = 0; i < CALLS; i++)); do
        start=$EPOCHREALTIME
        call "$1" 2> /dev/null || { echo "$1 failed in the timed loop" >&3; exit 1; }
        end=$EPOCHREALTIME
        WALL[$1]+="$((10#${end/./} - 10#${start/./})) " # microseconds, no subshell
    done
}
VARIANTS=(true tools module)
for variant in "${VARIANTS[@]}"; do call "$variant"; done # warm the page cache
TIMEFORMAT='%3U %3S'
echo "module start-up: $ROUNDS rounds of $CALLS calls per variant" >&2
for ((r = 0; r < ROUNDS; r++)); do
    rotated=("${VARIANTS[@]:$((r % 3))}" "${VARIANTS[@]:0:$((r % 3))}")
    for variant in "${rotated[@]}"; do
        { time round "$variant"; } 2> cpu.txt
        CPU[$variant]+="$(awk -v n="$CALLS" '{printf "%d", ($1 + $2) * 1e6 / n}' cpu.txt) "
    done
done
m() { tr ' ' '\n' <<< "$1" | grep . | median; }

# The module process alone, its children not counted: `perf stat --no-inherit` task-clock
# (CPU time from exec to exit, kernel included), mean of CALLS runs, median over ROUNDS.
declare -A TASK_CLOCK
if perf stat -x, -e task-clock --no-inherit /bin/true > /dev/null 2>&1; then
    for ((r = 0; r < ROUNDS; r++)); do
        for variant in true module; do
            command=(/bin/true)
            [ $variant = module ] && command=("$MODULE" args.json)
            TASK_CLOCK[$variant]+="$(perf stat -x, -e task-clock --no-inherit -r "$CALLS" "${command[@]}" 2>&1 > /dev/null \
                | awk -F, '$3 ~ /^task-clock/ {printf "%d", $1 * 1000}') "
        done
    done
    clock() { ms "$(m "${TASK_CLOCK[$1]}")"; }
else
    echo "perf stat --no-inherit is not available here (package linux-perf; perf_event_paranoid): task-clock not measured" >&2
    clock() { echo n/a; }
fi

for variant in "${VARIANTS[@]}"; do
    WALL_MEDIAN[$variant]=$(m "${WALL[$variant]}")
    CPU_MEDIAN[$variant]=$(m "${CPU[$variant]}")
done
own() { # ARRAY: module - fake tools, microseconds
    local -n values=$1
    echo $((values[module] - values[tools]))
}
row() { printf '%-54s %9s %9s %10s\n' "$@"; }
printf '\nper call, ms: wall median of %d calls; user+sys (bash `time`) and task-clock\n' $((ROUNDS * CALLS))
printf '(perf stat --no-inherit: this process only, children not counted), medians of %d rounds\n' "$ROUNDS"
row "" wall user+sys task-clock
row "/bin/true (exec floor)" "$(ms "${WALL_MEDIAN[true]}")" "$(ms "${CPU_MEDIAN[true]}")" "$(clock true)"
row "fake hosted-engine --vm-status --json" "$(ms "${WALL_MEDIAN[tools]}")" "$(ms "${CPU_MEDIAN[tools]}")" "-"
row "he_maintenance_facts ARGS_FILE (tool + vdsm over TLS)" "$(ms "${WALL_MEDIAN[module]}")" "$(ms "${CPU_MEDIAN[module]}")" "$(clock module)"
own_wall=$(own WALL_MEDIAN); own_cpu=$(own CPU_MEDIAN)
row "module time (he_maintenance_facts - fake tool)" "$(ms "$own_wall")" "$(ms "$own_cpu")" "$(clock module)"
if [ "$(clock module)" = n/a ]; then own_clock=n/a; else own_clock=$(ratio "$(m "${TASK_CLOCK[module]}")" 5000); fi
row "ratio module time / 5 ms (goal <= 1.0)" "$(ratio "$own_wall" 5000)" "$(ratio "$own_cpu" 5000)" "$own_clock"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

# --- 2. per task in a playbook ---
play() { # the play header every playbook shares
    printf -- '- name: Start-up benchmark\n  hosts: localhost\n  connection: local\n  gather_facts: false\n'
    printf '  vars:\n    ansible_python_interpreter: "{{ ansible_playbook_python }}"\n  tasks:\n'
}
{ play; echo "    []"; } > empty.yml
{
    play
    for ((i = 1; i <= TASKS; i++)); do
        printf '    - name: Facts %d\n      ovirt_he.upgrade.he_maintenance_facts:\n' "$i"
        printf '        he_conf: %s\n        log_dir: %s\n        run_id: bench\n' "$FIXTURES/hosted-engine.conf" "$WORK/logs"
        printf '        vdsm_address: %s\n        vdsm_pki_dir: %s\n' "$VDSM_ADDRESS" "$FIXTURES/pki"
    done
} > facts.yml
{
    play
    for ((i = 1; i <= TASKS; i++)); do
        printf '    - name: Command %d\n      ansible.builtin.command: hosted-engine --vm-status --json\n' "$i"
        printf '      changed_when: false\n'
    done
} > command.yml
{
    play
    for ((i = 1; i <= TASKS; i++)); do
        printf '    - name: Debug %d\n      ansible.builtin.debug:\n        msg: task %d\n' "$i" "$i"
    done
} > debug.yml
export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=False \
    ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False ANSIBLE_PIPELINING=False

playbook() { # VARIANT: runs its playbook once, prints microseconds
    local file=$1.yml pipelining=False start end
    [ "$1" = command-pipelining ] && file=command.yml pipelining=True
    start=$EPOCHREALTIME
    ANSIBLE_PIPELINING=$pipelining ansible-playbook "$file" > "play-$1.out" 2>&1 \
        || { echo "playbook $1 failed:" >&2; cat "play-$1.out" >&2; exit 1; }
    end=$EPOCHREALTIME
    [ "$1" = empty ] || grep -Eq "ok=$TASKS +changed=0 .*failed=0" "play-$1.out" \
        || { echo "playbook $1 did not run $TASKS unchanged tasks:" >&2; cat "play-$1.out" >&2; exit 1; }
    echo $((10#${end/./} - 10#${start/./}))
}
PLAYS=(empty facts command command-pipelining debug)
declare -A PLAY
echo "playbooks: $RUNS runs of each, $TASKS tasks" >&2
for ((r = 0; r < RUNS; r++)); do
    rotated=("${PLAYS[@]:$((r % 5))}" "${PLAYS[@]:0:$((r % 5))}")
    for variant in "${rotated[@]}"; do PLAY[$variant]+="$(playbook "$variant") "; done
done
empty=$(m "${PLAY[empty]}")
per_task() { echo $((($(m "${PLAY[$1]}") - empty) / TASKS)); }
facts_task=$(per_task facts); command_task=$(per_task command)

printf '\n%-56s %9s %9s\n' "playbook, median of $RUNS runs" "total s" "ms/task"
printf '%-56s %9s %9s\n' "empty playbook (subtracted from the others)" "$(seconds "$empty")" ""
play_row() { printf '%-56s %9s %9s\n' "$1" "$(seconds "$(m "${PLAY[$2]}")")" "$(ms "$(per_task "$2")")"; }
play_row "$TASKS x ovirt_he.upgrade.he_maintenance_facts" facts
play_row "$TASKS x ansible.builtin.command hosted-engine --vm-status" command
play_row "$TASKS x ansible.builtin.command, ANSIBLE_PIPELINING=True" command-pipelining
play_row "$TASKS x ansible.builtin.debug (nothing run on the host)" debug
printf '%-56s %9s\n' "ratio per task facts / command (goal <= 1.0)" "$(ratio "$facts_task" "$command_task")"
printf '%-56s %9s\n' "ratio per task facts / command with pipelining" "$(ratio "$facts_task" "$(per_task command-pipelining)")"
printf '%-56s %9s\n' "ratio whole playbooks facts / command" "$(ratio "$(m "${PLAY[facts]}")" "$(m "${PLAY[command]}")")"

# --- 3. direct vdsm client vs the vdsm-client path ---
if [ -z "${HE_LAB_BIN:-}" ] || [ -z "${OLD_MODULES_DIR:-}" ]; then
    echo "direct client vs vdsm-client path: set HE_LAB_BIN and OLD_MODULES_DIR to measure it (README.md)" >&2
    exit 0
fi
MODULES_DIR=$(dirname "$MODULE")
LAB=$WORK/lab
"$HE_LAB_BIN" --dir "$LAB" init --profile el7-4.3:el8-4.4 > /dev/null
"$HE_LAB_BIN" --dir "$LAB" up > /dev/null
status() { "$HE_LAB_BIN" --dir "$LAB" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
PASSWORD=$(cat "$(status admin_password_file)")
common="\"he_conf\": \"$(status he_conf)\", \"log_dir\": \"$WORK/logs\", \"run_id\": \"bench\""
engine="\"engine_url\": \"$(status engine_url)\", \"password\": \"$PASSWORD\", \"ca_file\": \"$(status ca_file)\""
vdsm="\"vdsm_address\": \"$(status vdsm_address)\", \"vdsm_pki_dir\": \"$(status vdsm_pki_dir)\""
echo "{$common, $vdsm}" > direct-maintenance.json
echo "{$common}" > client-maintenance.json
echo "{$common, $engine, $vdsm}" > direct-spm.json
echo "{$common, $engine}" > client-spm.json
export PATH=$(status bin_dir):$PATH
lab_call() { # VARIANT: one call of a module of the lab host
    case $1 in
    direct-maintenance) "$MODULES_DIR/he_maintenance_facts" direct-maintenance.json ;;
    client-maintenance) "$OLD_MODULES_DIR/he_maintenance_facts" client-maintenance.json ;;
    direct-spm) "$MODULES_DIR/he_spm_facts" direct-spm.json ;;
    client-spm) "$OLD_MODULES_DIR/he_spm_facts" client-spm.json ;;
    esac
}
LAB_VARIANTS=(direct-maintenance client-maintenance direct-spm client-spm)
declare -A LAB_WALL
for variant in "${LAB_VARIANTS[@]}"; do
    lab_call "$variant" > result.json || true
    grep -q '"failed":false' result.json || { echo "$variant failed on the lab:" >&2; cat result.json >&2; exit 1; }
done
echo "direct vdsm client vs vdsm-client path: $ROUNDS rounds of $CALLS calls per variant" >&2
for ((r = 0; r < ROUNDS; r++)); do
    rotated=("${LAB_VARIANTS[@]:$((r % 4))}" "${LAB_VARIANTS[@]:0:$((r % 4))}")
    for variant in "${rotated[@]}"; do
        for ((i = 0; i < CALLS; i++)); do
            start=$EPOCHREALTIME
            lab_call "$variant" > /dev/null 2>&1 || { echo "$variant failed in the timed loop" >&2; exit 1; }
            end=$EPOCHREALTIME
            LAB_WALL[$variant]+="$((10#${end/./} - 10#${start/./})) "
        done
    done
done
printf '\n%-56s %9s %9s %7s\n' "on a lab host (4.4 profile), wall ms per call, median" "direct" "vdsm-client" "ratio"
for module in maintenance spm; do
    direct=$(m "${LAB_WALL[direct-$module]}"); client=$(m "${LAB_WALL[client-$module]}")
    printf '%-56s %9s %9s %7s\n' "he_${module}_facts" "$(ms "$direct")" "$(ms "$client")" "$(ratio "$direct" "$client")"
done
