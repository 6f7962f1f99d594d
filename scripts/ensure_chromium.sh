#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (Playwright from PyPI, never a downloaded browser build).
# Installs it when missing. Prints nothing when Chromium is there; otherwise prints why it is not
# (on stdout, for DECON_BROWSER_UNAVAILABLE: the browser tests are then skipped, saying so).
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
echo "Installing Debian chromium for the browser tests" >&2
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
        >/tmp/decon-apt-chromium.log 2>&1; then
    reason="apt-get install chromium failed: $(tail -n 1 /tmp/decon-apt-chromium.log)"
    echo "WARNING: ${reason}; the browser tests will be SKIPPED" >&2
    echo "$reason"
fi
