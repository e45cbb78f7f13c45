#!/usr/bin/env bash
# Install the Debian packages whose commands the tests drive, when a command is missing.
# Arguments are command:package pairs (e.g. promtool:prometheus).
set -eu
# sbin tools (logrotate) are found even when the caller's PATH lacks those folders
PATH="$PATH:/usr/sbin:/sbin"
missing=()
for pair in "$@"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ensure-tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# --no-install-recommends: the tests need the command, not the server's web assets
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
  apt-get update >/dev/null
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
}
