"""Physics-based multi-contrast brain MRI simulator (BrainWeb-like, no downloads).

Anatomy comes from nilearn's bundled MNI152 2009 tissue templates under a random per-subject
warp; optional lesions (tumour, acute stroke, MS plaques) add their own tissues; each contrast
follows its signal equation with partial volume, a smooth bias field and Rician noise.
"""

from mrsynth.data.simulation.anatomy import BrainTemplate, DeformationSettings, load_template
from mrsynth.data.simulation.cohort import MANIFEST_NAME, simulate_cohort, subject_ids
from mrsynth.data.simulation.lesions import LESION_LABELS, LESION_TYPES, TumourSize
from mrsynth.data.simulation.signal import SIMULATED_CONTRASTS
from mrsynth.data.simulation.subject import SimulatedSubject, SimulationConfig, simulate_subject
from mrsynth.data.simulation.tissues import TISSUES, TissueParameters, tissue_table

__all__ = [
    "BrainTemplate",
    "DeformationSettings",
    "LESION_LABELS",
    "LESION_TYPES",
    "MANIFEST_NAME",
    "SIMULATED_CONTRASTS",
    "SimulatedSubject",
    "SimulationConfig",
    "TISSUES",
    "TissueParameters",
    "TumourSize",
    "load_template",
    "simulate_cohort",
    "simulate_subject",
    "subject_ids",
    "tissue_table",
]
