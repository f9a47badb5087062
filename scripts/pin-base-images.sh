#!/usr/bin/env bash
# Re-pins the base images of deploy/Dockerfile: for each `FROM name:tag@sha256:…` line, asks the
# registry for the current digest of the tag's multi-architecture index and rewrites the line.
# Run it where a registry is reachable (a workstation or CI runner with Docker buildx or crane),
# review the diff, rebuild both architectures, commit.
# Usage: scripts/pin-base-images.sh [DOCKERFILE]
set -euo pipefail
cd "$(dirname "$0")/.."
dockerfile=${1:-deploy/Dockerfile}

index_digest() { # image:tag -> sha256:… of its index (the digest every platform shares)
  if command -v crane >/dev/null 2>&1; then
    crane digest "$1"
  elif docker buildx version >/dev/null 2>&1; then
    docker buildx imagetools inspect "$1" --format '{{json .Manifest}}' \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])'
  else
    echo "neither crane nor docker buildx is installed: cannot ask the registry" >&2
    return 1
  fi
}

changed=0
while read -r image; do
  tagged=${image%@*}
  digest=$(index_digest "$tagged")
  [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "unexpected digest for $tagged: $digest" >&2; exit 1; }
  if [ "$image" != "$tagged@$digest" ]; then
    echo "$tagged: ${image#*@} -> $digest"
    sed -i "s|^FROM ${image//|/\\|}|FROM $tagged@$digest|" "$dockerfile"
    changed=1
  else
    echo "$tagged: unchanged ($digest)"
  fi
done < <(sed -n 's/^FROM \([^ ]*\).*/\1/p' "$dockerfile")
[ "$changed" = 0 ] || echo "rewrote $dockerfile: rebuild for linux/arm64 and linux/amd64 before committing"
