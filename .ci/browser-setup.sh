#!/usr/bin/env bash
# Installs what the explorer's browser test (cli/tests/explorer_browser.rs) needs: Debian's
# headless-capable `chromium` and the Noto CJK fonts the explorer's CSS names for Chinese.
# Skips whatever is already installed; called by .ci/run and by the test itself.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then missing+=(fonts-noto-cjk); fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing ${missing[*]} for the explorer's browser test…" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
