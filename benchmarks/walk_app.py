"""The app walked as a biologist walks it, on two cohorts shaped like the ones of issue #26, timed.

Two simulated cohorts stand in for the walk's real ones (not shipped): 85 samples of raw counts
over 10,101 genes named by Ensembl ID (as the lymphoblastoid cohort), and 90 samples of
log2(TPM + 1) over 3,899 genes named by symbol (as the colorectal tumours), each with a sample
sheet (tissue, sex). Each is driven through the app in Streamlit's AppTest, page by page:
upload → QC → run the model (embeddings, imputation, maps) → hold-out check → Predict (tissue)
→ Predict (sex, priced at the pace the first evaluation measured) → Downloads, with the
seconds of each step, and what the app said it would cost beside them.

    python benchmarks/walk_app.py [--permutations 99]

Not a test: nothing is asserted beyond "no error on the page". Uses the shipped demo model.
Other work on the same cores changes every number.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

JOB_TIMEOUT = 3600


def cohorts() -> dict[str, tuple[bytes, bytes]]:
    """Name → (table CSV, sample sheet CSV) of the two stand-in cohorts."""
    from bulkformer.genes import load_annotation
    from bulkformer.simulate import simulate_cohort

    annotation = load_annotation()
    genes = annotation.table
    genes = genes[genes["ensg_id"].isin(annotation.protein_coding_ids())][["ensg_id", "symbol", "length"]]
    genes = genes.dropna().drop_duplicates("ensg_id")
    rng = np.random.default_rng(26)
    made = {}
    for name, n_samples, n_genes, seed in (("counts, 10,101 Ensembl IDs", 85, 10_101, 1),
                                           ("log2 TPM, 3,899 symbols", 90, 3_899, 2)):
        chosen = genes.iloc[np.sort(rng.choice(len(genes), size=n_genes, replace=False))]
        cohort = simulate_cohort(chosen.reset_index(drop=True), n_samples=n_samples, seed=seed,
                                 tissues=("blood", "colon"), outlier_fraction=0.0)
        counts = cohort.counts
        sheet = cohort.sample_sheet[["tissue", "sex"]]
        if seed == 1:
            table = counts
        else:
            lengths = chosen.set_index("ensg_id")["length"].reindex(counts.index).to_numpy()[:, None]
            rate = counts.to_numpy() / lengths
            tpm = rate / rate.sum(axis=0, keepdims=True) * 1e6
            symbols = chosen.set_index("ensg_id")["symbol"].reindex(counts.index)
            table = pd.DataFrame(np.log2(tpm + 1), index=pd.Index(symbols, name="gene"), columns=counts.columns)
        made[name] = (table.to_csv().encode(), sheet.to_csv().encode())
    return made


def walk(name: str, table: bytes, sheet: bytes, permutations: int) -> list[tuple[str, float, str]]:
    """(step, seconds, what the app said) for one cohort."""
    from streamlit.testing.v1 import AppTest

    steps: list[tuple[str, float, str]] = []

    def timed(step: str, action: Callable[[], str]) -> None:
        start = time.perf_counter()
        said = action()
        steps.append((step, time.perf_counter() - start, said))
        if at.exception or at.error:
            raise SystemExit(f"{name}: {step}: {[e.value for e in (*at.exception, *at.error)]}")

    def finish(kind: str) -> str:
        entry = at.session_state["bf_jobs"].get(kind)
        if entry is not None:
            entry.job.wait(JOB_TIMEOUT)
        at.run()
        return ""

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()

    def upload() -> str:
        at.switch_page("pages/upload.py").run()
        at.file_uploader(key="table_uploader").set_value((f"{name}.csv", table, "text/csv")).run()
        at.file_uploader(key="sheet_uploader").set_value(("samples.csv", sheet, "text/csv")).run()
        return "; ".join(f"{m.label} {m.value}" for m in at.metric)

    def model_page() -> str:
        at.switch_page("pages/model.py").run()
        return " ".join(m.value for m in at.markdown if "per sample" in m.value)[:160]

    def main_run() -> str:
        at.switch_page("pages/embeddings.py").run()
        next(b for b in at.button if b.label == "Run BulkFormer").click().run()
        return finish("main")

    def said(fragment: str) -> str:
        """The first info box or caption holding ``fragment``: the app's own estimate."""
        return next((str(e.value) for e in (*at.info, *at.caption, *at.markdown) if fragment in str(e.value)), "")

    def holdout() -> str:
        at.switch_page("pages/imputation.py").run()
        estimate = said("runs the model once more")
        at.button(key="holdout_run").click().run()
        finish("holdout")
        took = said("The check took")
        verdict = said("Hold-out verdict")
        return (f"said before: «{estimate[estimate.find('The check runs'):]}» · after: «{took}» · "
                f"{verdict[verdict.find('Hold-out'):][:80]}")

    def predict(column: str) -> Callable[[], str]:
        def evaluate() -> str:
            at.switch_page("pages/predict.py").run()
            at.selectbox(key="pred_column").set_value(column).run()
            at.selectbox(key="pred_permutations").set_value(permutations).run()
            estimate = said("model fits")
            at.button(key="pred_evaluate").click().run()
            finish("predict")
            verdict = said("Verdict")
            return f"said before: «{estimate[estimate.find('This evaluation'):]}» · {verdict[:90]}"
        return evaluate

    def downloads() -> str:
        at.switch_page("pages/downloads.py").run()
        return f"{len(at.get('download_button'))} download buttons"

    timed("upload + QC", upload)
    timed("Model page", model_page)
    timed("model run + maps", main_run)
    timed("hold-out check", holdout)
    timed("Predict (tissue)", predict("tissue"))
    timed("Predict (sex), priced at the pace just measured", predict("sex"))
    timed("Downloads page", downloads)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permutations", type=int, default=99)
    args = parser.parse_args()
    os.environ.setdefault("BULKFORMER_CACHE_DIR", tempfile.mkdtemp(prefix="walk-"))
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print("| cohort | step | seconds | what the app said |")
    print("|---|---|---:|---|")
    for name, (table, sheet) in cohorts().items():
        for step, seconds, said in walk(name, table, sheet, args.permutations):
            print(f"| {name} | {step} | {seconds:.1f} | {said.replace('|', '/')} |", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
