#!/bin/sh
# Benchmark (SPEC 10): he_inject_backup validate_only vs the original's checks,
# `gzip -t` + `md5sum -c`, on the same engine-backup archive, in one run.
#
# Usage: tests/bench/backup_validation.sh [DUMP_MIB]   (default 1024)
# Needs: a release build of he_inject_backup (cargo build --release -p he-modules
# --bin he_inject_backup; CARGO_TARGET_DIR honoured), GNU tar, gzip, xz, md5sum.
# The archive is built as engine-backup builds it (reference original-tool §7): an
# engine dump (half incompressible like pg_dump's custom format, half text), ./files as
# an xz tar of /etc, md5sum of every file, then `tar -C DIR -cpSzf FILE .`.
set -eu
dump_mib=${1:-1024}
target=${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/target}
module=$target/release/he_inject_backup
[ -x "$module" ] || { echo "build it first: cargo build --release -p he-modules --bin he_inject_backup" >&2; exit 2; }
work=$(mktemp -d /var/tmp/he-bench-backup.XXXXXX)
trap 'rm -rf "$work"' EXIT
tree=$work/tree
mkdir -p "$tree/db"
half=$((dump_mib / 2))
head -c "$((half * 1048576))" /dev/urandom > "$tree/db/engine_backup.db"
yes "COPY public.audit_log (audit_log_id, log_time, log_type_name, message) FROM stdin;" |
    head -c "$(((dump_mib - half) * 1048576))" >> "$tree/db/engine_backup.db"
tar -C / -cpSJf "$tree/files" etc/ssl etc/apt 2>/dev/null || true
echo 4.1.9.1 > "$tree/version"
echo centos7 > "$tree/os_version"
echo 'OVESETUP_DB_HOST=localhost' > "$tree/config"
(cd "$tree" && find . -type f ! -name md5sum -printf '%P\n' | xargs md5sum > "$work/md5sum" && mv "$work/md5sum" md5sum)
tar -C "$tree" -cpSzf "$work/backup.tar.gz" .
echo "archive: $(du -m "$work/backup.tar.gz" | cut -f1) MiB compressed, dump $dump_mib MiB"

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }
cat "$work/backup.tar.gz" > /dev/null # page cache, for every contender alike

printf '{"backup": "%s", "validate_only": true, "log_dir": "%s/logs"}' "$work/backup.tar.gz" "$work" > "$work/args"
t0=$(now); "$module" "$work/args" > "$work/result"; t1=$(now)
grep -q '"failed":false' "$work/result" || { cat "$work/result"; exit 1; }
module_s=$(elapsed "$t0" "$t1")

t0=$(now); gzip -t "$work/backup.tar.gz"; t1=$(now)
gzip_s=$(elapsed "$t0" "$t1")
mkdir "$work/x"
t0=$(now); tar -C "$work/x" -pSxzf "$work/backup.tar.gz"; t1=$(now)
extract_s=$(elapsed "$t0" "$t1")
cat "$work/x/db/engine_backup.db" > /dev/null
t0=$(now); (cd "$work/x" && md5sum -c --status md5sum); t1=$(now)
md5_s=$(elapsed "$t0" "$t1")

reference_s=$(echo "$gzip_s + $md5_s" | bc)
printf '%-44s %8s\n' "step" "seconds"
printf '%-44s %8.3f\n' "he_inject_backup validate_only (all checks)" "$module_s"
printf '%-44s %8.3f\n' "gzip -t" "$gzip_s"
printf '%-44s %8.3f\n' "md5sum -c (already extracted, cached)" "$md5_s"
printf '%-44s %8.3f\n' "(tar -xzf, needed before md5sum -c)" "$extract_s"
printf 'ratio module / (gzip -t + md5sum -c)          %8.2f  (goal <= 1.2)\n' "$(echo "$module_s / $reference_s" | bc -l)"
printf 'ratio module / (gzip -t + tar -x + md5sum -c) %8.2f\n' "$(echo "$module_s / ($reference_s + $extract_s)" | bc -l)"
