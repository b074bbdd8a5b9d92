#!/usr/bin/env bash
# Rebuilds natview's emoji dataset from npm registry packages (nothing is fetched at run time;
# this script is only for rebuilding what is committed, or for making the full set).
#
#   scripts/build-demo.sh                 # the committed demo subset → assets/demo
#   scripts/build-demo.sh --full [OUT]    # every emoji in every design → data/emoji-full
#
# Set NATVIEW_NPM_DIR to a folder holding the three .tgz files to skip the download.
set -euo pipefail
cd "$(dirname "$0")/.."

GOOGLE=emoji-datasource-google@16.0.0
TWITTER=emoji-datasource-twitter@16.0.0
FLUENT=fluentui-emoji@1.3.0

mode=subset
out=assets/demo
extra=(--listings 480 --seed 0)
if [ "${1:-}" = "--full" ]; then
  mode=full
  out=${2:-data/emoji-full}
  extra=(--full)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${NATVIEW_NPM_DIR:-}" ]; then
  cp "$NATVIEW_NPM_DIR"/emoji-datasource-google-16.0.0.tgz "$NATVIEW_NPM_DIR"/emoji-datasource-twitter-16.0.0.tgz \
     "$NATVIEW_NPM_DIR"/fluentui-emoji-1.3.0.tgz "$work"/
else
  (cd "$work" && npm pack --silent "$GOOGLE" "$TWITTER" "$FLUENT" >/dev/null)
fi
for name in google twitter; do
  mkdir -p "$work/$name"
  tar xzf "$work/emoji-datasource-$name-16.0.0.tgz" -C "$work/$name"
done
mkdir -p "$work/fluent"
tar xzf "$work/fluentui-emoji-1.3.0.tgz" -C "$work/fluent"

rm -rf "$out/images" "$out/manifest.csv"
mkdir -p "$out/licenses"
# The example needs only the headless library (no window crates to compile).
cargo run --quiet --release --no-default-features --example build_demo -- \
  --google "$work/google/package" --twitter "$work/twitter/package" \
  --fluent "$work/fluent/package" --out "$out" "${extra[@]}"

cp "$work/google/package/LICENSE" "$out/licenses/emoji-datasource-google.LICENSE"
cp "$work/twitter/package/LICENSE" "$out/licenses/emoji-datasource-twitter.LICENSE"
cp "$work/fluent/package/LICENSE" "$out/licenses/fluentui-emoji.LICENSE"
echo "built the $mode set in $out ($(du -sh "$out" | cut -f1))"
