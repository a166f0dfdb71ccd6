"""A generated MIMIC-CXR-JPG release in the published layout, with the defects real users meet.

Files as shipped: ``mimic-cxr-2.0.0-{metadata,chexpert,split}.csv.gz`` (real column names,
8-digit subject/study ids, ``xxxxxxxx-xxxxxxxx-...`` dicom ids), images
``files/pNN/pNNNNNNNN/sNNNNNNNN/<dicom_id>.jpg`` and reports ``files/pNN/pNNNNNNNN/sNNNNNNNN.txt``
(FINAL REPORT / EXAMINATION / INDICATION / TECHNIQUE / COMPARISON / FINDINGS / IMPRESSION).
Report layouts rotate over upper-case, mixed/lower-case headings, WET READ, CONCLUSION, varied
spacing and no FINDINGS. Defects are placed on fixed studies and returned, so tests can assert
exact counts and ids. Used by the source tests and by the data-step timing in the README.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

CHEXPERT = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum",
            "Fracture", "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion",
            "Pleural Other", "Pneumonia", "Pneumothorax", "Support Devices")
METADATA_COLUMNS = ("dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription",
                    "ViewPosition", "Rows", "Columns", "StudyDate", "StudyTime",
                    "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
                    "PatientOrientationCodeSequence_CodeMeaning")

LAYOUTS = {
    "upper": (
        "                                 FINAL REPORT\n"
        " EXAMINATION:  CHEST (PA AND LAT)\n \n"
        " INDICATION:  ___F with cough  // eval for pneumonia\n \n"
        " TECHNIQUE:  Chest PA and lateral\n \n"
        " COMPARISON:  ___\n \n"
        " FINDINGS: \n \n {findings}\n \n"
        " IMPRESSION: \n \n {impression}\n"
    ),
    "mixed": (
        "                                 FINAL REPORT\n"
        " Examination:  Chest radiograph\n"
        " Indication:  History: ___M with dyspnea\n"
        " Comparison:  None.\n"
        " Findings:\n {findings}\n"
        " impression:\n {impression}\n"
    ),
    "wet_read": (
        " WET READ: ___ ___ ___ 4:13 AM\n  Preliminary: {impression}\n"
        " ______________________________________________________________________________\n"
        "                                 FINAL REPORT\n"
        " REASON FOR EXAM:  chest pain\n"
        " FINDINGS:  {findings}\n"
        " IMPRESSION:  {impression}\n"
    ),
    "conclusion": (
        "                                 FINAL REPORT\n"
        " CLINICAL HISTORY:  Fever.\n"
        " FINDINGS :\n\n\n     {findings}\n"
        " CONCLUSION:   {impression}\n"
    ),
    "no_findings": (
        "                                 FINAL REPORT\n"
        " HISTORY:  Line placement.\n"
        " IMPRESSION:  {impression}\n"
    ),
}
_FINDINGS = ("There is no focal consolidation, pleural effusion or pneumothorax.",
             "The heart is moderately enlarged. Small bilateral pleural effusions.",
             "Right lower lobe opacity concerning for pneumonia.")
_IMPRESSIONS = ("No acute cardiopulmonary process.", "Cardiomegaly with small effusions.",
                "Right lower lobe pneumonia.")


@dataclass
class Release:
    """Paths of a generated release and the studies/images carrying each defect."""

    root: Path
    metadata_csv: Path
    labels_csv: Path
    split_csv: Path
    reports_dir: Path
    n_images: int = 0
    n_studies: int = 0
    layouts: dict[str, str] = field(default_factory=dict)  # study id -> layout
    missing_report: list[str] = field(default_factory=list)  # study ids
    missing_labels: list[str] = field(default_factory=list)  # study ids
    label_rows_without_images: list[str] = field(default_factory=list)  # study ids
    only_uncertain: list[str] = field(default_factory=list)  # study ids: all mentions -1
    missing_images: list[str] = field(default_factory=list)  # dicom ids
    blank_view: list[str] = field(default_factory=list)  # dicom ids: ViewPosition '' + code meaning
    decubitus_or_axial: list[str] = field(default_factory=list)  # dicom ids
    images_of_study: dict[str, list[str]] = field(default_factory=dict)


def _dicom(i: int) -> str:
    h = hashlib.sha1(f"dicom{i}".encode()).hexdigest()
    return "-".join(h[k : k + 8] for k in range(0, 40, 8))


def _gz_csv(frame: pd.DataFrame, path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False)


def write_release(root: Path, n_studies: int = 24, images_per_study: int = 2, *,
                  write_images: bool = True, defects: bool = True) -> Release:
    """Write a release of ``n_studies`` studies (3 per subject) under ``root``.

    With ``defects`` every 12th study (offsets below) carries one defect: no report file,
    no CheXpert row, only -1 mentions, a missing image, a blank ViewPosition (code meaning
    given), an AP AXIAL / PA LLD view; plus one CheXpert row for a study without images.
    """
    root.mkdir(parents=True, exist_ok=True)
    rel = Release(root, root / "mimic-cxr-2.0.0-metadata.csv.gz",
                  root / "mimic-cxr-2.0.0-chexpert.csv.gz", root / "mimic-cxr-2.0.0-split.csv.gz",
                  root / "reports")
    meta_rows, label_rows, split_rows = [], [], []
    layouts = list(LAYOUTS)
    made_dirs: set[Path] = set()
    img = 0
    for s in range(n_studies):
        subject = str(10000000 + 37 * (s // 3) + 3)
        study = str(50000000 + 7919 * s + 11)
        kind = s % 12 if defects else -1
        layout = layouts[s % len(layouts)]
        rel.layouts[study] = layout
        folder = f"files/p{subject[:2]}/p{subject}/s{study}"
        k = s % 3
        if kind != 1:
            path = rel.reports_dir / f"{folder}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(LAYOUTS[layout].format(findings=_FINDINGS[k], impression=_IMPRESSIONS[k]))
        else:
            rel.missing_report.append(study)
        values = {c: "" for c in CHEXPERT}
        if kind == 3:
            values["Pneumonia"] = "-1.0"
            values["Atelectasis"] = "-1.0"
            rel.only_uncertain.append(study)
        elif k == 0:
            values.update({"No Finding": "1.0", "Pneumothorax": "0.0"})
        elif k == 1:
            values.update({"Cardiomegaly": "1.0", "Pleural Effusion": "1.0", "Edema": "-1.0"})
        else:
            values.update({"Pneumonia": "1.0", "Atelectasis": "-1.0"})
            if s % 2:
                values["Lung Opacity"] = "1.0"
        if kind == 2:
            rel.missing_labels.append(study)
        else:
            label_rows.append({"subject_id": subject, "study_id": study, **values})
        rel.images_of_study[study] = []
        for j in range(images_per_study):
            dicom = _dicom(img)
            img += 1
            view, meaning = ("PA", "postero-anterior") if j == 0 else ("LATERAL", "lateral")
            if kind == 5 and j == 0:
                view, meaning = "", "antero-posterior"
                rel.blank_view.append(dicom)
            if kind == 6 and j == 0:
                view = "AP AXIAL" if s % 24 == 6 else "PA LLD"
                rel.decubitus_or_axial.append(dicom)
            meta_rows.append({
                "dicom_id": dicom, "subject_id": subject, "study_id": study,
                "PerformedProcedureStepDescription": "CHEST (PA AND LAT)", "ViewPosition": view,
                "Rows": "3056", "Columns": "2544", "StudyDate": str(21800101 + s % 28),
                "StudyTime": "123456.789", "ProcedureCodeSequence_CodeMeaning": "CHEST (PA AND LAT)",
                "ViewCodeSequence_CodeMeaning": meaning,
                "PatientOrientationCodeSequence_CodeMeaning": "Erect",
            })
            split_rows.append({"dicom_id": dicom, "study_id": study, "subject_id": subject,
                               "split": "test" if s % 10 == 9 else ("validate" if s % 10 == 8 else "train")})
            rel.images_of_study[study].append(dicom)
            if kind == 4 and j == 0:
                rel.missing_images.append(dicom)
            elif write_images:
                d = root / folder
                if d not in made_dirs:
                    d.mkdir(parents=True, exist_ok=True)
                    made_dirs.add(d)
                (d / f"{dicom}.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    if defects:
        orphan = "59999999"
        label_rows.append({"subject_id": "10000003", "study_id": orphan,
                           **{c: ("1.0" if c == "Edema" else "") for c in CHEXPERT}})
        rel.label_rows_without_images.append(orphan)
    _gz_csv(pd.DataFrame(meta_rows, columns=list(METADATA_COLUMNS)), rel.metadata_csv)
    _gz_csv(pd.DataFrame(label_rows, columns=["subject_id", "study_id", *CHEXPERT]), rel.labels_csv)
    _gz_csv(pd.DataFrame(split_rows), rel.split_csv)
    rel.n_images, rel.n_studies = img, n_studies
    return rel
