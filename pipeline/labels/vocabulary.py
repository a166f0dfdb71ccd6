"""Label vocabulary data: finding names, OpenI MeSH heading maps, report terms and masking word lists."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

NORMAL = "normal"
OTHER = "other"
ABNORMAL = "abnormal"

#: Tags that say nothing about the image; a row with only these is "unlabelled".
NON_FINDING_TAGS = frozenset({"no_indexing"})

#: OpenI MeSH *heading* (text before the first '/', lower case) -> finding name.
#: Covers the frequent headings of the 3,955 IU reports; anything else is slugged.
MESH_HEADING_MAP: Mapping[str, str] = MappingProxyType(
    {
        "normal": "normal",
        "no indexing": "no_indexing",
        "pulmonary atelectasis": "atelectasis",
        "atelectasis": "atelectasis",
        "atelectases": "atelectasis",
        "pleural effusion": "effusion",
        "pleural effusions": "effusion",
        "effusion": "effusion",
        "opacity": "opacity",
        "lung opacity": "opacity",
        "airspace disease": "airspace_disease",
        "consolidation": "consolidation",
        "pneumonia": "pneumonia",
        "infiltrate": "infiltrate",
        "infiltrates": "infiltrate",
        "cardiomegaly": "cardiomegaly",
        "calcified granuloma": "granuloma",
        "granuloma": "granuloma",
        "granulomatous disease": "granuloma",
        "nodule": "nodule",
        "nodules": "nodule",
        "mass": "mass",
        "lung lesion": "lung_lesion",
        "pulmonary emphysema": "emphysema",
        "emphysema": "emphysema",
        "pulmonary edema": "edema",
        "edema": "edema",
        "pulmonary congestion": "congestion",
        "pneumothorax": "pneumothorax",
        "cicatrix": "scarring",
        "calcinosis": "calcinosis",
        "catheters, indwelling": "device",
        "implanted medical device": "device",
        "surgical instruments": "device",
        "medical device": "device",
        "tube, inserted": "device",
        "stents": "device",
        "support devices": "device",
        "technical quality of image unsatisfactory": "technical_quality",
        "fractures, bone": "fracture",
        "fracture": "fracture",
        "pulmonary disease, chronic obstructive": "copd",
        "hernia, hiatal": "hiatal_hernia",
        "lung diseases, interstitial": "interstitial_disease",
        "pulmonary fibrosis": "fibrosis",
        "enlarged cardiomediastinum": "enlarged_cardiomediastinum",
        "no finding": "normal",
        "pleural other": "pleural_other",
    }
)

#: (heading, first subheading) pairs whose meaning is in the subheading.
MESH_SUBHEADING_MAP: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("cardiac shadow", "enlarged"): "cardiomegaly",
        ("heart", "enlarged"): "cardiomegaly",
        ("lung", "hypoinflation"): "hypoinflation",
        ("lung", "hyperdistention"): "hyperinflation",
    }
)

#: Finding name -> terms (with common synonyms) used by :func:`mask_label_terms`.
FINDING_TERMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "normal": (
            "normal",
            "normally",
            "within normal limits",
            "no acute",
            "unremarkable",
            "clear",
            "no active disease",
            "no abnormality",
            "no abnormalities",
            "negative chest",
            "no acute cardiopulmonary",
            "no acute disease",
        ),
        "cardiomegaly": (
            "cardiomegaly",
            "enlarged heart",
            "heart is enlarged",
            "heart size is enlarged",
            "heart is large",
            "cardiac enlargement",
            "heart enlargement",
            "enlarged cardiac silhouette",
            "cardiac silhouette is enlarged",
            "enlargement of the cardiac silhouette",
            "enlarged cardiomediastinal silhouette",
            "cardiomediastinal silhouette is enlarged",
            "enlarged cardiac shadow",
            "cardiac shadow is enlarged",
            "enlarged cardiac",
            "cardiac contour is enlarged",
            "enlarged cardiomediastinal",
        ),
        "effusion": (
            "effusion",
            "effusions",
            "pleural effusion",
            "pleural effusions",
            "pleural fluid",
            "hydrothorax",
            "blunting of the costophrenic angle",
            "blunting of the costophrenic angles",
            "blunted costophrenic angle",
            "blunted costophrenic angles",
            "costophrenic blunting",
            "costophrenic angle blunting",
        ),
        "opacity": (
            "opacity",
            "opacities",
            "opacification",
            "opacifications",
            "opacified",
            "density",
            "densities",
            "airspace disease",
            "air space disease",
            "airspace opacity",
            "infiltrate",
            "infiltrates",
            "consolidation",
        ),
        "pneumonia": (
            "pneumonia",
            "pneumonias",
            "pneumonic",
            "parapneumonic",
            "pneumonitis",
            "bronchopneumonia",
            "consolidation",
            "consolidations",
            "consolidative",
            "infiltrate",
            "infiltrates",
            "airspace disease",
            "air space disease",
            "infection",
            "infectious process",
        ),
        "consolidation": (
            "consolidation",
            "consolidations",
            "consolidative",
            "consolidated",
            "airspace disease",
            "air space disease",
        ),
        "infiltrate": ("infiltrate", "infiltrates", "infiltration", "infiltrative"),
        "airspace_disease": ("airspace disease", "air space disease", "airspace opacity"),
        "atelectasis": (
            "atelectasis",
            "atelectases",
            "atelectatic",
            "volume loss",
            "collapse",
            "collapsed",
            "plate-like",
            "platelike",
            "discoid",
        ),
        "nodule": (
            "nodule",
            "nodules",
            "nodular",
            "nodularity",
            "micronodular",
            "micronodules",
            "fibronodular",
            "reticulonodular",
            "mass",
            "masses",
            "granuloma",
            "granulomas",
            "granulomata",
            "granulomatous",
        ),
        "mass": ("mass", "masses", "lesion", "lesions", "neoplasm", "tumor", "tumour"),
        "granuloma": (
            "granuloma",
            "granulomas",
            "granulomata",
            "granulomatous",
            "calcified nodule",
            "calcified nodules",
        ),
        "edema": (
            "edema",
            "oedema",
            "vascular congestion",
            "congestion",
            "cephalization",
            "kerley",
            "interstitial markings",
        ),
        "congestion": ("congestion", "vascular congestion", "cephalization", "edema"),
        "pneumothorax": ("pneumothorax", "pneumothoraces"),
        "emphysema": (
            "emphysema",
            "emphysematous",
            "hyperinflation",
            "hyperinflated",
            "hyperexpanded",
            "hyperexpansion",
            "copd",
            "chronic obstructive",
        ),
        "hyperinflation": (
            "hyperinflation",
            "hyperinflated",
            "hyperexpanded",
            "hyperexpansion",
            "hyperaeration",
            "emphysema",
        ),
        "hypoinflation": (
            "hypoinflation",
            "hypoinflated",
            "low lung volumes",
            "low lung volume",
            "hypoventilatory",
            "poor inspiration",
            "shallow inspiration",
        ),
        "scarring": ("scarring", "scar", "scars", "cicatrix", "fibrotic"),
        "calcinosis": ("calcinosis", "calcification", "calcifications", "calcified"),
        "fracture": ("fracture", "fractures", "fractured"),
        "device": (
            "catheter",
            "catheters",
            "tube",
            "tubes",
            "line",
            "lines",
            "pacemaker",
            "stent",
            "stents",
            "device",
            "devices",
            "clips",
            "sternotomy wires",
        ),
    }
)



#: Words a tag-vocabulary entry never contributes *on its own* (they are still masked inside
#: a full heading phrase such as "pulmonary artery"): anatomy, position, degree/extent and
#: stop words. OpenI MeSH subheadings are mostly such words ("lung", "right", "upper lobe",
#: "mild"); masking them would blank out every report without hiding the label. Subheading
#: words *not* listed here are descriptors of the finding ("tortuous", "degenerative",
#: "blunted", "enlarged") and are masked.
KEEP_WORDS = frozenset(
    """
    a an and the of in on to for with without by or at as is are not other
    lung lungs pulmonary heart cardiac chest thorax thoracic image bone bones body bodies
    disease diseases tissue shadow angle angles vessel vessels blood artery arteries valve valves
    right left bilateral unilateral upper lower middle base bases apex apices lobe lobes lobar
    multilobar hilum hila hilar lingula pleura pleural lymph node nodes rib ribs trachea carina
    bronchi bronchus alveoli breast abdomen neck shoulder clavicle sternum humerus mitral aortic
    coronary cervical lumbar atria atrium ventricle ventricles azygos paratracheal retrocardiac
    supracardiac cardiophrenic costophrenic posterior anterior medial lateral
    mild moderate severe small large multiple diffuse focal scattered borderline minimal
    chronic acute bilaterally
    """.split()
)

#: Normalised heading terms that are ordinary anatomical words used by almost every report,
#: normal or not ("lungs are clear", "heart size is normal"); the rare tags with only such a
#: heading ('Lung/hilum', 'Heart/right') are not masked. Documented residual: tests allow
#: < 2% of abnormal reports to keep their own heading term because of this list.
UNMASKED_HEADING_TERMS = frozenset({"lung", "heart"})

#: Report wording of frequent OpenI headings that are not findings in FINDING_TERMS
#: (adjective forms, common synonyms). Used only through a tag vocabulary.
HEADING_SYNONYMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "aorta": ("aortic knob", "aortic arch", "aortic contour", "aortic calcification",
                  "aortic tortuosity", "ectatic", "ectasia", "unfolded", "unfolding",
                  "tortuosity", "tortuous"),
        "atherosclerosis": ("atherosclerotic", "atheromatous"),
        "spine": ("spinal", "degenerative", "degenerative changes", "spondylitic"),
        "thoracic_vertebrae": ("degenerative", "degenerative changes", "vertebral", "vertebra",
                               "vertebral bodies", "thoracic spine"),
        "diaphragm": ("hemidiaphragm", "hemidiaphragms", "diaphragmatic", "diaphragms"),
        "scoliosis": ("scoliotic", "curvature"),
        "spondylosis": ("spondylitic", "spondylotic", "degenerative"),
        "osteophyte": ("osteophytes", "osteophytic", "spurring", "spurs", "spur"),
        "hiatal_hernia": ("hiatal hernia", "hiatus hernia", "hernia"),
        "kyphosis": ("kyphotic", "kyphoscoliosis"),
        "deformity": ("deformities", "deformed"),
        "markings": ("interstitial markings", "interstitial prominence", "prominent interstitial"),
        "thickening": ("thickened",),
        "arthritis": ("arthritic", "degenerative"),
        "mediastinum": ("mediastinal widening", "widened mediastinum"),
        "shift": ("shifted", "deviation", "deviated"),
        "lucency": ("lucencies", "lucent"),
        "costophrenic_angle": ("costophrenic", "blunting", "blunted"),
    }
)
