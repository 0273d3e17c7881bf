"""Model: choose the checkpoint, device and batch size; see what is loaded and how to get the
published weights."""

from __future__ import annotations

import streamlit as st
import torch

from bulkformer import paths, speed
from bulkformer.download import DRIVE_CHECKPOINTS
from pages import _ui

st.title(":material/memory: Model")
_ui.show_flash()
ss = st.session_state

choices = _ui.available_models()
spec, device = _ui.model_choice()
if spec not in choices:  # a file that has gone away since it was chosen
    choices[spec] = spec
devices = {"auto": "Automatic (GPU if there is one)", "cpu": "CPU"}
if torch.cuda.is_available():
    devices["cuda"] = f"GPU ({torch.cuda.get_device_name(0)})"
if device not in devices:
    device = "auto"

with st.container(border=True):
    st.markdown("#### Settings")
    c1, c2, c3 = st.columns([3, 2, 1])
    new_spec = c1.selectbox(
        "Model", list(choices), index=list(choices).index(spec), format_func=choices.get, key="model_spec_pick",
        help="The demo model is for trying the app. The published BulkFormer models appear here once "
             f"downloaded into {paths.model_dir()}.",
    )
    new_device = c2.selectbox(
        "Device", list(devices), index=list(devices).index(device), format_func=devices.get, key="model_device_pick",
        help="Where the model runs. A GPU is many times faster; the CPU works for small cohorts.",
    )
    batch = c3.number_input(
        "Batch size", min_value=0, max_value=512, value=int(ss[_ui.K_BATCH] or 0), step=1, key="model_batch_pick",
        help="How many samples the model reads at once. 0 = automatic: one at a time on a CPU "
             "(fastest there), as many as fit on a GPU (halved by itself if memory runs out).",
    )
    if (new_spec, new_device) != (spec, device) or int(batch) != int(ss[_ui.K_BATCH] or 0):
        ss[_ui.K_MODEL_SPEC], ss[_ui.K_DEVICE], ss[_ui.K_BATCH] = new_spec, new_device, int(batch)
        ss.pop(_ui.K_PREPARED, None)  # the gene order may differ between models
        st.rerun()

model = _ui.get_model()
if model is not None:
    _ui.model_badge(model)
    st.markdown("#### Loaded model")
    m = st.columns(3)
    m[0].metric("Model", "demo" if model.is_demo else model.name)
    m[1].metric("Genes", f"{len(model.gene_ids):,}")
    m[2].metric("Runs on", model.device.type.upper())
    st.markdown(f"**Description:** {model.describe()}")
    st.markdown("**Checksum (sha256 of the weights)** — quote it to say exactly which model you used:")
    st.code(model.checksum, language=None)
    st.caption(f"Loaded from `{model.source}`")
    expected = speed.expected_time_per_sample(model.name, model.device.type)
    if expected:
        st.markdown(f"**Expected time per sample:** {expected}")

st.markdown("#### Getting the published weights")
st.markdown(
    f"""
The published BulkFormer files are downloaded once, on the server, from a terminal:

```bash
bulkformer download model     # checkpoints from Zenodo (the v1 release) → {paths.model_dir()}
bulkformer download data      # gene table, gene graphs, ESM2 gene features  → {paths.data_dir()}
```

Every file is checked against its published checksum. Then reload this page: the models appear
in the **Model** list above. The folders can be changed with the environment variables
`BULKFORMER_MODEL_DIR` and `BULKFORMER_DATA_DIR`.
"""
)
with st.expander("The v2 models (37M … 147M) are on Google Drive", icon=":material/cloud_download:"):
    st.markdown(
        "The authors publish the five v2 checkpoints on Google Drive, which cannot be downloaded "
        "without a web browser. Open a link, download the file, and move it — keeping its file "
        f"name — into `{paths.model_dir()}`. They also need `bulkformer download data` "
        "(gene table and TCGA gene graph)."
    )
    st.dataframe(
        [{"file": c.file_name, "model": c.name, "width": c.dim, "layers": c.performer_layers, "link": c.url}
         for c in DRIVE_CHECKPOINTS],
        hide_index=True, width="stretch",
        column_config={"link": st.column_config.LinkColumn("link", display_text="open on Google Drive")},
    )
