"""The hardening probe of issue #28, second round: files that once killed the process, and CLI
options that once ended in a traceback. Each file is read by ``read_table`` in a fresh child
process under an address-space limit (so a regression is a failed case, not a dead machine),
with its peak RSS and wall time; each CLI case runs in-process through typer's runner.

    nice -n 19 .venv/bin/python benchmarks/hardening_probe.py --workdir /tmp/probe

Figures go to benchmarks/RESULTS.md ("Hardening, second round").
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 6 * 1024**3  # what a child may map: the 4 M-column CSV once needed ~6.8 GB

CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from bulkformer.io import read_table
began = time.monotonic()
try:
    read_table(sys.argv[1])
    outcome = "accepted"
except Exception as err:
    outcome = type(err).__name__ + ": " + str(err).splitlines()[0][:160]
print(json.dumps({{"outcome": outcome, "seconds": round(time.monotonic() - began, 2),
                   "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}}))
"""


def wide_csv(path: Path, first: str, prefix: str, n: int) -> None:
    with path.open("w") as out:
        out.write(first + "," + ",".join(f"{prefix}{i}" for i in range(n)) + "\n")
        out.write("X0," + ",".join("1" for _ in range(n)) + "\n")


def bad_sparse_h5ad(path: Path) -> None:
    import anndata
    import h5py
    import pandas as pd
    import scipy.sparse

    adata = anndata.AnnData(scipy.sparse.csr_matrix(np.eye(3, dtype=np.float32)),
                            obs=pd.DataFrame(index=["S1", "S2", "S3"]), var=pd.DataFrame(index=["A", "B", "C"]))
    adata.write_h5ad(path)
    with h5py.File(path, "r+") as file:
        del file["X"]["indices"]
        file["X"]["indices"] = np.array([0, 1_000_000_000, 2], dtype=np.int64)


def xlsx_without_dimension(path: Path, n_rows: int, n_columns: int, cell: bytes = b"<c><v>1</v></c>") -> None:
    """Raw sheet XML without <dimension>, streamed into the zip (never held whole)."""
    sys.path.insert(0, str(ROOT / "tests" / "io"))
    from test_io_hardening import _xlsx_without_dimension

    shell = zipfile.ZipFile(io.BytesIO(_xlsx_without_dimension(1, 1)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for info in shell.infolist():
            if not info.filename.endswith("sheet1.xml"):
                archive.writestr(info.filename, shell.read(info.filename))
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
                        b'openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
            row = cell * n_columns
            for r in range(n_rows):
                sheet.write(b'<row r="%d">' % (r + 1) + row + b"</row>")
            sheet.write(b"</sheetData></worksheet>")


def read_in_child(path: Path) -> dict:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", CHILD.format(limit=LIMIT), str(path)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"outcome": f"CRASH (exit {done.returncode}): {done.stderr.strip()[-160:]}",
                "seconds": round(time.monotonic() - began, 2), "peak_mb": None}
    return json.loads(done.stdout.strip().splitlines()[-1])


def cli_cases(work: Path) -> list[tuple[str, str]]:
    """(the command line, what came back) for the options issue #28 listed."""
    import pandas as pd
    from typer.testing import CliRunner

    from bulkformer.cli import app
    from bulkformer.genes import protein_coding_ids

    counts = work / "counts.csv"
    genes = protein_coding_ids()[:300]
    pd.DataFrame(np.random.default_rng(0).negative_binomial(5, 0.05, size=(300, 6)),
                 index=pd.Index(genes, name="gene_id"), columns=[f"S{i}" for i in range(6)]).to_csv(counts)
    c = str(counts)
    small = ["--epochs", "1", "--dim", "16", "--layers", "1", "--device", "cpu", "--graph-k", "3"]
    cases = [
        ["train", c, str(work / "m1"), *small, "--lr", "nan"],
        ["train", c, str(work / "m2"), *small, "--lr", "-1"],
        ["train", c, str(work / "m3"), *small, "--lr", "inf"],
        ["train", c, str(work / "m4"), "--epochs", "1", "--device", "cpu", "--dim", "1000000000"],
        ["train", c, str(work / "m5"), "--epochs", "1", "--device", "cpu", "--layers", "100000000"],
        ["train", c, str(work / "m6"), *small[:-2], "--graph-k", "100000000"],
        ["train", c, "/proc/1/m", *small],
        ["holdout", c, "--seed", "-1"],
        ["holdout", c, "--output", "/proc/1/x.csv"],
        ["extract", c, "/proc/1/nope.csv"],
        ["extract", c, str(work / "missing" / "o.csv"), "--device", "cpu"],
        ["verify", "--model-dir", "/nonexistent"],
    ]
    results = []
    runner = CliRunner()
    for args in cases:
        began = time.monotonic()
        result = runner.invoke(app, args)
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        lines = [line.strip(" │╭╮╰╯─") for line in result.output.splitlines() if line.strip(" │╭╮╰╯─")]
        hint = next((i for i, line in enumerate(lines) if line.startswith("→")), None)
        usage = next((line for line in lines if "Invalid value" in line), None)
        last = usage or (lines[hint - 1] if hint else lines[-1] if lines else "")
        what = (f"TRACEBACK {type(result.exception).__name__}" if crashed
                else f"exit {result.exit_code}: {last.strip()[:150]}")
        results.append((" ".join(a if len(a) < 40 else "…/" + Path(a).name for a in args),
                        f"{what} ({time.monotonic() - began:.1f} s)"))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bulkformer-probe"))
    parser.add_argument("--skip-xlsx", action="store_true", help="the 4 GB sheet takes minutes to write")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    files = {
        "CSV, 1 row × 4,000,000 columns (gene_id,S0..)": (work / "wide.csv",
                                                          lambda p: wide_csv(p, "gene_id", "S", 4_000_000)),
        "CSV, 1 sample × 4,000,000 gene columns": (work / "wide_genes.csv",
                                                   lambda p: wide_csv(p, "sample", "G", 4_000_000)),
        "CSV, 1 row × 5,000,000 columns": (work / "wider.csv", lambda p: wide_csv(p, "gene_id", "S", 5_000_000)),
        "h5ad, sparse 3 × 3 with column index 10⁹": (work / "bad.h5ad", bad_sparse_h5ad),
    }
    if not args.skip_xlsx:
        files["xlsx without <dimension>, 10,000 × 16,000 cells"] = (
            work / "nodim.xlsx", lambda p: xlsx_without_dimension(p, 10_000, 16_000))
        files["xlsx without <dimension>, 10,000 × 16,000 empty cells `<c/>` (0.64 GB of XML)"] = (
            work / "nodim_empty.xlsx", lambda p: xlsx_without_dimension(p, 10_000, 16_000, b"<c/>"))
    print("| file | size | outcome | time | peak RSS |\n|---|---:|---|---:|---:|")
    for label, (path, make) in files.items():
        if not path.exists():
            make(path)
        r = read_in_child(path)
        peak = f"{r['peak_mb']:,} MB" if r["peak_mb"] is not None else "n/a"
        print(f"| {label} | {path.stat().st_size / 1e6:,.1f} MB | {r['outcome']} | {r['seconds']} s | {peak} |",
              flush=True)
    print("\n| command | outcome |\n|---|---|")
    for command, outcome in cli_cases(work):
        print(f"| `bulkformer {command}` | {outcome} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
