#!/usr/bin/env bash
# Writes DIR/plugin.json for the plugin executable DIR/NAME: the manifest the
# gateway's plugin host reads and whose sha256 it enforces before exec.
set -euo pipefail
dir=$1 name=$2 version=${3:-dev}
sum=$(sha256sum "$dir/$name" | cut -d' ' -f1)
cat > "$dir/plugin.json" <<JSON
{
  "name": "$name",
  "version": "$version",
  "protocol_version": 1,
  "executable": "$name",
  "sha256": "$sum"
}
JSON
