"""What a model card says about use and data, in words, and where a data set comes from."""

from pathlib import Path

INTENDED_USE = (
    "Research and demonstration: a second look at one H&E-stained breast-tissue field of view "
    "(BreakHis-like, 40X to 400X), labelled benign or malignant with a calibrated probability, for "
    "a pathologist or a researcher who sees the slide too. Not a diagnosis."
)
OUT_OF_SCOPE = (
    "diagnosing, staging or excluding cancer in a patient, or any treatment decision",
    "tissue other than breast, stains other than H&E (immunohistochemistry, special stains), "
    "cytology, frozen sections, whole-slide images",
    "photographs, drawings, screenshots or scans that are not a microscope field of view "
    "(the input gate and the feature check refuse what they recognise as such; neither is perfect)",
    "a model trained on the synthetic set: it has seen no real tissue",
)

SYNTHETIC_MARKER = "SYNTHETIC.txt"  # written by `histochain data synth` at the root of its output


def provenance(root: Path) -> str:
    """Synthetic (our generator's marker at or above the BreakHis folder) or user-supplied."""
    for folder in (root, *root.parents[:3]):
        if (folder / SYNTHETIC_MARKER).is_file():
            return "synthetic: histochain data synth (generated H&E-like images, no real tissue)"
    return f"user-supplied: the images under {root.name}/ (BreakHis or class folders)"
