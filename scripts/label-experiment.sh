#!/usr/bin/env bash
# Labels into fine-tuning, measured: an "oracle analyst" judges the hard-pairs review queue of a
# dataset by its own listing column (same listing → same, other listing → different), the
# verdicts go in through `natview labels import`, and two fine-tunes from the same start are
# compared: without and with --labels. Prints both held-out reports and the judged pairs'
# cosines before/after (trained on and kept out).
#
#   scripts/label-experiment.sh [DATASET] [PAIRS] [STEPS]
#   (default: data/emoji-full/manifest.csv, 400 pairs, 150 steps; NATVIEW=path/to/natview)
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=${1:-data/emoji-full/manifest.csv}
pairs=${2:-400}
steps=${3:-150}
natview=${NATVIEW:-target/bench/dist/natview}
out=${OUT:-target/label-experiment}
mkdir -p "$out"
common=(--model compact --quiet)

echo "== review queue: $pairs hard pairs of $dataset" >&2
"$natview" review "$dataset" "${common[@]}" --kind hard --limit "$pairs" --json > "$out/hard.json"

echo "== the oracle's verdicts → $out/verdicts.csv" >&2
python3 - "$out/hard.json" "$out/verdicts.csv" <<'PY'
import csv, json, sys, datetime
queue = json.load(open(sys.argv[1]))
at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["kind", "path", "listing", "other_path", "other_listing", "value", "who", "at", "model", "similarity"])
    for p in queue["pairs"]:
        a, b = p["a"], p["b"]
        verdict = "same" if a["listing"] == b["listing"] else "different"
        w.writerow(["pair", a["path"], a["listing"], b["path"], b["listing"], verdict, "oracle", at, queue["model"], f'{p["similarity"]:.6f}'])
same = sum(1 for p in queue["pairs"] if p["a"]["listing"] == p["b"]["listing"])
print(f"{len(queue['pairs'])} verdicts: {same} same, {len(queue['pairs']) - same} different", file=sys.stderr)
PY
workspace="$out/workspace"
rm -rf "$workspace"
"$natview" labels import "$out/verdicts.csv" "$dataset" --workspace "$workspace"

for run in plain labels; do
  extra=()
  [ "$run" = labels ] && extra=(--labels)
  echo "== fine-tune ($run)" >&2
  "$natview" finetune "$dataset" "${common[@]}" --workspace "$workspace" --from compact --method infonce \
    --steps "$steps" --batch 64 --lr 0.05 --warmup 15 "${extra[@]}" | tee "$out/$run.txt"
done
