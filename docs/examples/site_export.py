"""Write a synthetic site export shaped like a hospital PACS/RIS extract (docs/own-data.md).

    python docs/examples/site_export.py OUT [--studies 160] [--new 60] [--seed 7]

writes ``OUT/export.csv`` (labelled studies), ``OUT/new_cases.csv`` (unlabelled new studies)
and the films under ``OUT/films/<year>/<MRN>/<Accession>/film.jpg`` (small grey JPEGs). Columns:
MRN, Accession, StudyDate, FilePath, ReportText (INDICATION / COMPARISON / FINDINGS /
IMPRESSION headings), PatientAge, PatientSex, Cardiomegaly (Yes/No, 9 % Yes). Two
studies per patient. Three rows are broken on purpose: a film that is missing, a film that
is not an image, and a study without a label. Nothing here is real patient data.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

COLUMNS = ("MRN", "Accession", "StudyDate", "FilePath", "ReportText", "PatientAge", "PatientSex",
           "Cardiomegaly")
_INDICATIONS = ("Shortness of breath.", "Cough and fever.", "Chest pain, rule out pneumonia.",
                "Preoperative assessment.", "Follow-up of known lung nodule.", "Fall, rib pain.")
_NORMAL = ("The lungs are clear. No pleural effusion or pneumothorax. The heart size is normal.",
           "No focal consolidation. Cardiomediastinal silhouette within normal limits.",
           "Clear lungs bilaterally. Normal heart size. No acute osseous abnormality.")
_POSITIVE = ("The cardiac silhouette is enlarged. Mild pulmonary vascular congestion.",
             "Cardiomegaly. No focal consolidation. Small left pleural effusion.",
             "Enlarged heart. Lungs are clear. No pneumothorax.")
_POSITIVE_QUIET = ("Low lung volumes. No focal consolidation. No pleural effusion.",)
_IMPRESSION = {True: ("Cardiomegaly.", "Enlarged cardiac silhouette.", "Cardiomegaly without "
                      "acute process."),
               False: ("No acute cardiopulmonary process.", "Normal chest radiograph.")}


def _film(path: Path, positive: bool, rng: np.random.Generator, size: int) -> None:
    """A small grey chest-like film: positives have a wider bright heart shadow."""
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size] / size
    img = 60 + 40 * rng.standard_normal((size, size))
    width = 0.21 if positive else 0.17
    heart = ((x - 0.52) ** 2 / width**2 + (y - 0.62) ** 2 / 0.18**2) < 1
    img[heart] += 110
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)


def _report(positive: bool, rng: np.random.Generator) -> str:
    if positive:
        pool = _POSITIVE if rng.random() < 0.8 else _POSITIVE_QUIET  # most reports name it
    else:
        pool = _NORMAL
    comparison = "None." if rng.random() < 0.5 else "Prior study from last year."
    findings = pool[int(rng.integers(len(pool)))]
    impression = _IMPRESSION[bool(positive and pool is not _POSITIVE_QUIET)]
    return (f"INDICATION: {_INDICATIONS[int(rng.integers(len(_INDICATIONS)))]}\n"
            f"COMPARISON: {comparison}\n\nFINDINGS:\n{findings}\n\n"
            f"IMPRESSION:\n{impression[int(rng.integers(len(impression)))]}")


def _rows(n: int, start: int, rng: np.random.Generator, root: Path, size: int,
          labelled: bool) -> list[dict[str, str]]:
    rows = []
    positives = set(rng.choice(n, size=max(2, round(0.09 * n)), replace=False).tolist())
    for i in range(n):
        patient = start + i // 2  # two studies per patient
        mrn, acc = f"MRN{700000 + patient:07d}", f"ACC{26000000 + start * 2 + i:08d}"
        positive = i in positives
        year = 2024 + i % 3
        rel = f"{year}/{mrn}/{acc}/film.jpg"
        _film(root / "films" / rel, positive, rng, size)
        rows.append({
            "MRN": mrn, "Accession": acc,
            "StudyDate": f"{year}-{1 + i % 12:02d}-{1 + i % 28:02d}", "FilePath": rel,
            "ReportText": _report(positive, rng),
            "PatientAge": "" if i % 37 == 5 else str(int(rng.integers(25, 90))),
            "PatientSex": "F" if rng.random() < 0.5 else "M",
            "Cardiomegaly": ("Yes" if positive else "No") if labelled else "",
        })
    return rows


def write_export(out: Path, *, studies: int = 160, new: int = 60, seed: int = 7,
                 size: int = 64) -> dict[str, Path]:
    """Write the export under ``out``; returns the paths of both CSVs and the film folder."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    rows = _rows(studies, 0, rng, out, size, labelled=True)
    (out / "films" / rows[3]["FilePath"]).unlink()  # broken: the film is missing
    (out / "films" / rows[10]["FilePath"]).write_bytes(b"not a jpeg")  # broken: unreadable
    rows[17]["Cardiomegaly"] = ""  # broken: no label
    new_rows = _rows(new, studies, rng, out, size, labelled=False)
    paths = {"export": out / "export.csv", "new": out / "new_cases.csv", "films": out / "films"}
    for key, table in (("export", rows), ("new", new_rows)):
        with paths[key].open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(table)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--studies", type=int, default=160)
    parser.add_argument("--new", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    paths = write_export(args.out, studies=args.studies, new=args.new, seed=args.seed)
    for key, path in paths.items():
        print(f"{key}: {path}")


if __name__ == "__main__":
    main()
