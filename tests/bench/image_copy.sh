#!/usr/bin/env bash
# Benchmark of he_image_copy against what the original tool ran, as ratios measured in one
# run on the same data (SPEC section 10). Prints one table; see README.md next to this file.
#
#   tests/bench/image_copy.sh [WORK_DIR]      (default /var/tmp/he-bench; needs ~9 GiB)
#   RUNS=5 tests/bench/image_copy.sh          (runs per variant; the median is reported)
#
# Copies: he_image_copy raw -> raw (checksum blake3, none, sha256) vs
# `qemu-img convert -n -O raw` onto the same preallocated destination, from page cache, on a
# sparse 2 GiB image with 1 GiB of data and on a dense 2 GiB image. he_image_copy flushes
# the destination to stable storage before it reports (fdatasync); qemu-img does not, so the
# table also shows qemu-img followed by `sync --data` of the destination (same durability).
# Staging: he_image_copy src_ova + sha1 + stage_dir (one read of the OVA, then qcow2 -> raw,
# flushed) vs the original's separate passes: sha1sum, tar -tzf, tar -xzf, qemu-img convert
# -O raw (+ sync --data of the raw image, for the same durability).
# The machine should be otherwise idle: every variant runs RUNS times, interleaved.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-${BENCH_DIR:-/var/tmp/he-bench}}
RUNS=${RUNS:-3}
GIB=$((1 << 30))
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

cargo build --release -q -p he-modules --bin he_image_copy --manifest-path "$ROOT/Cargo.toml"
BIN=$CARGO_TARGET_DIR/release/he_image_copy
mkdir -p "$WORK/logs"
cd "$WORK"

now() { date +%s.%N; }
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ratio() { echo "scale=2; $1 / $2" | bc | sed 's/^\./0./'; }

# --- data (kept between runs) ---
if [ ! -f sparse.raw ]; then
    echo "creating sparse.raw (2 GiB, 1 GiB of random data)" >&2
    truncate -s 2G sparse.raw.tmp
    for i in $(seq 0 15); do
        dd if=/dev/urandom of=sparse.raw.tmp bs=1M count=64 seek=$((i * 128)) conv=notrunc status=none
    done
    mv sparse.raw.tmp sparse.raw
fi
if [ ! -f dense.raw ]; then
    echo "creating dense.raw (2 GiB of random data)" >&2
    head -c $((2 * GIB)) /dev/urandom > dense.raw.tmp && mv dense.raw.tmp dense.raw
fi
if [ ! -f appliance.ova ]; then
    echo "creating appliance.ova (2 GiB virtual, 768 MiB of system files, qcow2, tar.gz)" >&2
    rm -rf ova-build && mkdir -p ova-build/master/vms/TPL ova-build/images/IMG
    truncate -s 2G appliance.raw
    find /usr/lib /usr/share /usr/bin -type f -size +64k 2>/dev/null | sort | head -n 20000 \
        | xargs cat 2>/dev/null | head -c $((768 << 20)) > files.bin || true
    for part in 0 1 2; do
        dd if=files.bin of=appliance.raw bs=1M skip=$((part * 256)) count=256 \
            seek=$((part * 640)) conv=notrunc status=none
    done
    qemu-img convert -f raw -O qcow2 appliance.raw ova-build/images/IMG/VOL
    echo "FORMAT=COW" > ova-build/images/IMG/VOL.meta
    cat > ova-build/master/vms/TPL/TPL.ovf <<'OVF'
<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ovf:version="0.9"><Section xsi:type="ovf:DiskSection_Type"><Disk ovf:diskId="VOL" ovf:size="2" ovf:fileRef="IMG/VOL" ovf:disk-alias="virtio-disk0"/></Section><Content xsi:type="ovf:VirtualSystem_Type"><Section xsi:type="ovf:VirtualHardwareSection_Type"><Item><rasd:ResourceType>3</rasd:ResourceType><rasd:num_of_sockets>1</rasd:num_of_sockets><rasd:cpu_per_socket>4</rasd:cpu_per_socket></Item><Item><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>16384</rasd:VirtualQuantity></Item></Section></Content></ovf:Envelope>
OVF
    tar -C ova-build -cf - master images | gzip -6 > appliance.ova.tmp
    mv appliance.ova.tmp appliance.ova
    rm -rf ova-build files.bin appliance.raw
fi
OVA_SHA1=$(sha1sum appliance.ova | cut -d' ' -f1)

# --- one timed variant: prints seconds ---
# A new preallocated destination for every variant (on DEST_DIR), the source warmed,
# writeback and discards of the previous variant settled.
fresh_dest() { # SOURCE DEST_DIR
    rm -f "$2/dest.raw"
    sync
    sleep 1
    fallocate -l 2G "$2/dest.raw"
    cat "$1" > /dev/null
    sync
}
run_copy() { # TOOL SOURCE DEST_DIR
    local tool=$1 source=$2 dest=$3/dest.raw start end
    fresh_dest "$source" "$3"
    case $tool in
    qemu) start=$(now); qemu-img convert -n -O raw -f raw "$source" "$dest"; end=$(now) ;;
    qemu+sync) start=$(now); qemu-img convert -n -O raw -f raw "$source" "$dest"; sync --data "$dest"; end=$(now) ;;
    *)
        printf '{"src": "%s", "dest": "%s", "checksum": "%s", "log_dir": "%s/logs"}' \
            "$WORK/$source" "$dest" "$tool" "$WORK" > args.json
        start=$(now); "$BIN" args.json > result.json; end=$(now)
        grep -q '"failed":false' result.json || { cat result.json >&2; exit 1; }
        ;;
    esac
    rm -f "$dest"
    echo "$end - $start" | bc
}
run_stage() { # original|blake3|none
    local how=$1 start end
    rm -rf stage && mkdir stage && cat appliance.ova > /dev/null && sync && sleep 1
    case $how in
    original)
        start=$(now)
        sha1sum appliance.ova > /dev/null
        tar -tzf appliance.ova > /dev/null
        tar -xzf appliance.ova -C stage images/IMG/VOL
        qemu-img convert -O raw stage/images/IMG/VOL stage/appliance.raw
        sync --data stage/appliance.raw
        end=$(now)
        ;;
    *)
        printf '{"src_ova": "%s/appliance.ova", "sha1": "%s", "stage_dir": "%s/stage", "checksum": "%s", "log_dir": "%s/logs"}' \
            "$WORK" "$OVA_SHA1" "$WORK" "$how" "$WORK" > args.json
        start=$(now); "$BIN" args.json > result.json; end=$(now)
        grep -q '"failed":false' result.json || { cat result.json >&2; exit 1; }
        ;;
    esac
    echo "$end - $start" | bc
}

# Destinations: the work directory's file system (durable copies: he_image_copy flushes),
# and /dev/shm (tmpfs: no storage, so this compares the copy engines themselves).
DEST_DIRS=("$WORK")
[ -d /dev/shm ] && DEST_DIRS+=(/dev/shm)
TOOLS=(qemu qemu+sync blake3 none sha256)
declare -A T
for run in $(seq "$RUNS"); do
    echo "run $run of $RUNS" >&2
    # Rotate the order every run so no variant always follows the same one.
    rotated=("${TOOLS[@]:$((run % 5))}" "${TOOLS[@]:0:$((run % 5))}")
    for dest_dir in "${DEST_DIRS[@]}"; do
        for source in sparse.raw dense.raw; do
            for tool in "${rotated[@]}"; do
                T["$dest_dir $source $tool"]+="$(run_copy "$tool" "$source" "$dest_dir") "
            done
        done
    done
    for how in original blake3 none; do
        T["stage $how"]+="$(run_stage "$how") "
    done
done
m() { echo "${T[$1]}" | tr ' ' '\n' | grep . | median; }

printf '\n%-44s %8s %12s %16s\n' "variant (median of $RUNS runs)" seconds "vs qemu-img" "vs qemu-img+sync"
for dest_dir in "${DEST_DIRS[@]}"; do
    echo "-- destination on $(df --output=fstype "$dest_dir" | tail -1) ($dest_dir)"
    for source in sparse.raw dense.raw; do
        q=$(m "$dest_dir $source qemu"); qs=$(m "$dest_dir $source qemu+sync")
        printf '%-44s %8.3f\n' "$source qemu-img convert -n -O raw" "$q"
        printf '%-44s %8.3f\n' "$source qemu-img + sync --data" "$qs"
        for tool in blake3 none sha256; do
            t=$(m "$dest_dir $source $tool")
            printf '%-44s %8.3f %12s %16s\n' "$source he_image_copy checksum=$tool" "$t" "$(ratio "$t" "$q")" "$(ratio "$t" "$qs")"
        done
    done
done
echo "-- appliance staging (ratio vs the original's passes)"
o=$(m "stage original")
printf '%-44s %8.3f\n' "OVA sha1sum, tar -tzf, tar -xzf, qemu-img" "$o"
for how in blake3 none; do
    t=$(m "stage $how")
    printf '%-44s %8.3f %12s\n' "OVA he_image_copy stage checksum=$how" "$t" "$(ratio "$t" "$o")"
done
rm -f args.json result.json && rm -rf stage
