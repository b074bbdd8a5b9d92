"""Reads natview's exports with the readers other tools use (numpy, pyarrow, json, csv) and
checks that they agree with each other and with the items: exits non-zero on any mismatch.

usage: read_exports.py NPY_DIR PARQUET_FILE JSONL_FILE PROJECTOR_DIR
Prints one JSON line: rows, dim, and the first item's path and listing.
"""
import csv
import json
import sys

import numpy as np
import pyarrow.parquet as pq

npy_dir, parquet_file, jsonl_file, projector_dir = sys.argv[1:5]

vectors = np.load(f"{npy_dir}/embeddings.npy")
assert vectors.dtype == np.float32 and vectors.ndim == 2, (vectors.dtype, vectors.shape)
items = [json.loads(line) for line in open(f"{npy_dir}/items.jsonl")]
assert len(items) == len(vectors), (len(items), len(vectors))
assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4), "rows are not unit length"

table = pq.read_table(parquet_file)
embedding = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
assert np.array_equal(embedding.astype(np.float32), vectors), "parquet vectors differ from npy"
assert table.column("path").to_pylist() == [i["path"] for i in items], "parquet paths differ"
assert table.column("listing").to_pylist() == [i["listing"] for i in items], "parquet listings differ"
assert table.column("id").to_pylist() == list(range(len(items))), "parquet ids are not 0..N"
metadata = [json.loads(m) for m in table.column("metadata").to_pylist()]
assert metadata == [i["metadata"] for i in items], "parquet metadata differs"

rows = [json.loads(line) for line in open(jsonl_file)]
assert np.array_equal(np.array([r["embedding"] for r in rows], dtype=np.float32), vectors), "jsonl vectors differ"
assert [r["path"] for r in rows] == [i["path"] for i in items], "jsonl paths differ"

tsv = np.loadtxt(f"{projector_dir}/vectors.tsv", delimiter="\t", dtype=np.float32, ndmin=2)
assert np.array_equal(tsv, vectors), "projector vectors.tsv differs"
with open(f"{projector_dir}/metadata.tsv", newline="") as f:
    meta = list(csv.reader(f, delimiter="\t"))
assert meta[0][:4] == ["id", "path", "listing", "label"], meta[0]
assert len(meta) == len(items) + 1, (len(meta), len(items))
assert [m[2] for m in meta[1:]] == [i["listing"] for i in items], "projector listings differ"
config = open(f"{projector_dir}/projector_config.pbtxt").read()
assert 'tensor_path: "vectors.tsv"' in config and 'metadata_path: "metadata.tsv"' in config, config

print(json.dumps({"rows": len(items), "dim": int(vectors.shape[1]), "path": items[0]["path"], "listing": items[0]["listing"]}))
