"""Your own data from Python (docs/own-data.md#from-python): the functions the CLI verbs call.

Run it in the folder where the page's commands ran (it reuses their artifacts/ and the stored
cells), cell by cell in a notebook or whole:

    python docs/examples/own_data_api.py
"""

# %% The export as a DataFrame, mapped onto the manifest: the data step in one call
from pathlib import Path

import pandas as pd

from pipeline import api

EXAMPLES = Path(__file__).resolve().parent
export = pd.read_csv("site_export/export.csv", dtype=str, keep_default_na=False)
data = api.data_from_frame(
    export, name="site_nb", image_root="site_export/films",
    columns={"sample_id": "Accession", "patient_id": "MRN", "image_path": "FilePath",
             "report_text": "ReportText", "label": "Cardiomegaly"},
    label_source="report", positive_label="Yes", tabular=["PatientAge", "PatientSex"])
profile = data.profile
print(f"{profile.n_rows} studies, {profile.n_patients} patients, classes {dict(profile.classes)}, "
      f"{profile.images['missing']} missing and {profile.images['unreadable']} unreadable films")

# %% The benchmark: typed results (the cells `pipeline classify` stored are reused)
result = api.classify(EXAMPLES / "site.toml")
for cell in sorted(result.cells, key=lambda c: -c.summary("roc_auc")[0])[:3]:
    mean, sd = cell.summary("roc_auc")
    print(f"{cell.label:<40} roc_auc {mean:.3f} ± {sd:.3f}")
print([w.split(":")[0] for w in result.warnings])

# %% Predictions for new, unlabelled cases: a DataFrame in, a DataFrame out
new = pd.read_csv("site_export/new_cases.csv", dtype=str, keep_default_na=False)
pred = api.predict("artifacts/models/site-fused", new, image_root="site_export/films",
                   name="new_cases_nb", n_boot=0, progress=False)
print(pred[["MRN", "Accession", "probability", "predicted_label", "decision_rule",
            "threshold", "status"]].head().to_string(index=False))
assert len(pred) == len(new) and pred["Accession"].tolist() == new["Accession"].tolist()
