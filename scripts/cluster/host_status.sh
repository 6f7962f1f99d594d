#!/usr/bin/env bash
# Per-host check: prints "Running" while any orchestrator workspace under the work root holds a
# lock file whose PID is alive, otherwise "Finished".
# Usage: host_status.sh [ROOT]   (default: $DECON_WORK_ROOT, else /mnt/decon-work)
set -u
root="${1:-${DECON_WORK_ROOT:-/mnt/decon-work}}"
state="Finished"
if [ -d "$root" ]; then
    for lock in "$root"/*/orchestrator.lock; do
        [ -f "$lock" ] || continue
        pid="$(tr -dc '0-9' < "$lock" 2>/dev/null)"
        [ -n "$pid" ] || continue
        if kill -0 "$pid" 2>/dev/null || [ -d "/proc/$pid" ]; then
            state="Running"
            [ -n "${DECON_STATUS_VERBOSE:-}" ] && echo "live lock: $lock (pid $pid)" >&2
        fi
    done
fi
echo "$state"
