#!/usr/bin/env bash
# Installs natview under PREFIX: the binary in PREFIX/bin, its shipped weights in
# PREFIX/share/natview/models and the built-in demo in PREFIX/share/natview/demo — the places
# an installed natview looks for them (see the README's Install section).
#
#   scripts/install.sh PREFIX              # builds with `cargo install --path . --root PREFIX
#                                          #   --profile dist` (release + thin LTO)
#   NATVIEW_BIN=path/to/natview scripts/install.sh PREFIX   # installs that binary instead
#
# Extra arguments after PREFIX go to `cargo install` (e.g. --no-default-features,
# --features cuda). Run it again to update; files are replaced, nothing else is touched.
set -euo pipefail
if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: $0 PREFIX [cargo install options]" >&2
  exit 2
fi
prefix="$1"
shift
src="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$prefix/bin" "$prefix/share/natview"
prefix="$(cd "$prefix" && pwd)"

if [[ -n "${NATVIEW_BIN:-}" ]]; then
  install -m 755 "$NATVIEW_BIN" "$prefix/bin/natview"
else
  cargo install --path "$src" --root "$prefix" --locked --profile dist "$@"
fi

# The weights and the demo: copied into a temporary folder beside their place, then swapped in.
for part in models:models assets/demo:demo; do
  from="$src/${part%%:*}"
  to="$prefix/share/natview/${part##*:}"
  tmp="$to.tmp-$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  cp -a "$from/." "$tmp/"
  # Not the workspaces natview made inside the source tree (.natview*).
  find "$tmp" -name '.natview*' -prune -exec rm -rf {} +
  rm -rf "$to"
  mv "$tmp" "$to"
done
echo "natview installed: $prefix/bin/natview (weights and demo in $prefix/share/natview)"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "add $prefix/bin to PATH to run it as \`natview\`" ;;
esac
