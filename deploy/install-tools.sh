#!/usr/bin/env bash
# The Debian tools the production shape and its checks run on this machine: nginx (the proxy of
# `make scale-up`), Prometheus and promtool, wrk (the benchmarks' load generator) and Chromium
# (the browser tests).
set -euo pipefail
missing=()
for tool in nginx:nginx prometheus:prometheus promtool:prometheus wrk:wrk chromium:chromium; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
