#!/usr/bin/env bash
# Debian packages some features need, installed where this machine allows it (root + apt-get):
#   chromium          the dashboard's browser tests (driven by Playwright through executable_path)
#   portaudio19-dev   PortAudio headers, to build pyaudio for `mood-mirror stream --mic`
#   haproxy           the sticky load balancer of `make run-cluster` and the scale-out test
# Elsewhere it says what to install and succeeds: those features then skip or explain themselves.
set -u
packages=(chromium portaudio19-dev haproxy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    && exit 0
fi
echo "note: not installed: ${missing[*]} (install them with your package manager for browser tests, microphone streaming and the cluster)"
exit 0
