"""A synthetic, H&E-like stand-in for BreakHis, written in BreakHis's own layout and names.

SYNTHETIC DATA: no tissue was imaged. BreakHis cannot be downloaded on these machines, so tests
and the demo use this. Pink stroma with fibrous texture and pale lumina; purple nuclei. Malignant
tissue has denser, larger, more irregular (pleomorphic) and darker nuclei; benign nuclei are
smaller, rounder, paler and partly arranged around glands. Every patient has its own stain,
scale and density, and every image its own blur and noise, so the classes overlap: a model has
to learn nuclear morphology, not a colour.
"""

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from oracle.ml.data.breakhis import LABELS, TUMOUR_TYPES
from oracle.ml.statement import SYNTHETIC_MARKER

WIDTH, HEIGHT = 700, 460
STROMA = np.array([235.0, 175.0, 205.0])
NUCLEUS_BENIGN = np.array([125.0, 80.0, 165.0])
NUCLEUS_MALIGNANT = np.array([95.0, 48.0, 135.0])
LUMEN = np.array([246.0, 228.0, 238.0])


@dataclass(frozen=True)
class PatientStyle:
    """What varies between patients: staining, magnification drift, cellularity."""

    stain: tuple[float, float, float]
    scale: float
    density: float
    darkness: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "PatientStyle":
        return cls(
            stain=tuple(float(v) for v in rng.normal(1.0, 0.04, 3)),  # type: ignore[arg-type]
            scale=float(rng.uniform(0.8, 1.25)),
            density=float(rng.uniform(0.75, 1.3)),
            darkness=float(rng.uniform(-0.12, 0.12)),
        )


def _stroma(rng: np.random.Generator, style: PatientStyle) -> Image.Image:
    coarse = rng.normal(0, 1, (HEIGHT // 20, WIDTH // 40)).astype(np.float32)
    streaks = np.asarray(
        Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC), dtype=np.float32
    )
    fine = rng.normal(0, 1, (HEIGHT // 4, WIDTH // 4)).astype(np.float32)
    fibres = np.asarray(
        Image.fromarray(fine).resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR), dtype=np.float32
    )
    shade = 1.0 + 0.06 * streaks[..., None] + 0.04 * fibres[..., None]
    rgb = STROMA * np.array(style.stain) * shade
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _blob(
    cx: float, cy: float, radius: float, irregularity: float, rng: np.random.Generator
) -> list[tuple[float, float]]:
    points = 20
    elongation = rng.uniform(1.0, 1.0 + irregularity)
    angle0 = rng.uniform(0, math.pi)
    jitter = rng.normal(1.0, irregularity * 0.35, points).clip(0.5, 1.6)
    coords = []
    for k in range(points):
        t = 2 * math.pi * k / points
        r = radius * jitter[k]
        x, y = r * math.cos(t) * elongation, r * math.sin(t) / elongation
        coords.append(
            (
                cx + x * math.cos(angle0) - y * math.sin(angle0),
                cy + x * math.sin(angle0) + y * math.cos(angle0),
            )
        )
    return coords


def synth_image(rng: np.random.Generator, malignant: bool, style: PatientStyle) -> Image.Image:
    """One 700x460 RGB field of view."""
    image = _stroma(rng, style)
    draw = ImageDraw.Draw(image)
    stain = np.array(style.stain)

    lumen = tuple(int(v) for v in np.clip(stain * LUMEN, 0, 255))
    for _ in range(int(rng.integers(0, 4))):  # fat / lumina: pale pink holes
        cx, cy = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        draw.polygon(_blob(cx, cy, rng.uniform(20, 70) * style.scale, 0.4, rng), fill=lumen)

    area = WIDTH * HEIGHT / 10_000
    if malignant:
        count = int(area * rng.uniform(4.0, 7.0) * style.density)
        radius_mean, radius_sd, irregularity, base = 6.2, 1.9, 0.5, NUCLEUS_MALIGNANT
        glands, gland_jitter = int(rng.integers(0, 3)), 7.0
    else:
        count = int(area * rng.uniform(2.5, 5.0) * style.density)
        radius_mean, radius_sd, irregularity, base = 5.0, 1.0, 0.22, NUCLEUS_BENIGN
        glands, gland_jitter = int(rng.integers(1, 5)), 1.5

    centres: list[tuple[float, float]] = []
    for _ in range(glands):  # glands: nuclei around a lumen; carcinoma's are distorted
        gx, gy = rng.uniform(60, WIDTH - 60), rng.uniform(60, HEIGHT - 60)
        gr = rng.uniform(22, 50) * style.scale
        draw.polygon(_blob(gx, gy, gr, 0.15 + 0.25 * malignant, rng), fill=lumen)
        ring = max(6, int(2 * math.pi * gr / 11))
        for k in range(ring):
            t = 2 * math.pi * k / ring
            r = gr + 6 + rng.normal(0, gland_jitter)
            centres.append((gx + r * math.cos(t), gy + r * math.sin(t)))
    clustered = malignant and rng.uniform() < 0.7
    for _ in range(count):
        if clustered and centres and rng.uniform() < 0.5:
            px, py = centres[int(rng.integers(len(centres)))]
            centres.append((px + rng.normal(0, 14), py + rng.normal(0, 14)))
        else:
            centres.append((rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)))

    darkness = 1.0 - style.darkness
    for cx, cy in centres:
        radius = max(2.0, rng.normal(radius_mean, radius_sd)) * style.scale
        tone = base * stain * darkness * rng.normal(1.0, 0.08)
        fill = tuple(int(v) for v in np.clip(tone, 0, 255))
        draw.polygon(_blob(cx, cy, radius, irregularity, rng), fill=fill)
        if malignant and rng.uniform() < 0.35:  # prominent nucleolus
            r = radius * 0.25
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v * 0.6) for v in fill))

    image = image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.6, 1.6))))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(3, 8), (HEIGHT, WIDTH, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def synth_focus(
    rng: np.random.Generator, style: PatientStyle | None = None, share: float = 0.25
) -> tuple[Image.Image, npt.NDArray[np.bool_]]:
    """A malignant focus in benign tissue, and where it is: a benign field with a malignant field
    of the same patient inside one ellipse covering `share` of the image. For judging where an
    explanation (oracle/ml/gradcam.py) puts the evidence; not a training image."""
    style = style or PatientStyle.draw(rng)
    benign = np.asarray(synth_image(rng, False, style))
    malignant = np.asarray(synth_image(rng, True, style))
    a = math.sqrt(share * WIDTH * HEIGHT / math.pi * WIDTH / HEIGHT)
    b = a * HEIGHT / WIDTH
    cx, cy = rng.uniform(a, WIDTH - a), rng.uniform(b, HEIGHT - b)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    mask = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1
    return Image.fromarray(np.where(mask[..., None], malignant, benign)), mask


def synth_png(rng: np.random.Generator, malignant: bool, style: PatientStyle | None = None) -> bytes:
    """One synthetic image as PNG bytes, encoded as the data set's files are (fast, level 1)."""
    buffer = io.BytesIO()
    synth_image(rng, malignant, style or PatientStyle.draw(rng)).save(
        buffer, format="PNG", optimize=False, compress_level=1
    )
    return buffer.getvalue()


def synthesize(
    out: Path,
    patients: int,
    images_per_patient: int,
    seed: int = 0,
    magnification: int = 400,
    progress: bool = True,
) -> list[Path]:
    """Writes ``out/BreaKHis_v1/histology_slides/breast/<class>/SOB/<type>/SOB_<C>_<T>_<patient>/<mag>X/``
    with BreakHis file names. Patients alternate benign/malignant; tumour types cycle per class."""
    if patients < 2 or images_per_patient < 1:
        raise ValueError("need at least 2 patients (one per class) and 1 image per patient")
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / SYNTHETIC_MARKER).write_text(
        "SYNTHETIC DATA written by `histochain data synth`: generated H&E-like images, no tissue was "
        f"imaged. {patients} patients, {images_per_patient} images each, seed {seed}.\n"
    )
    breast = out / "BreaKHis_v1" / "histology_slides" / "breast"
    written = []
    bar = tqdm(total=patients * images_per_patient, desc="synthesising", unit="img", disable=not progress)
    for index in range(patients):
        label = LABELS[index % 2]
        types = sorted(TUMOUR_TYPES[label])
        tumour = types[(index // 2) % len(types)]
        patient_id = f"{10000 + index}S"
        year = 14 + index % 2
        style = PatientStyle.draw(rng)
        folder = (
            breast
            / label
            / "SOB"
            / TUMOUR_TYPES[label][tumour]
            / f"SOB_{label[0].upper()}_{tumour}_{year}-{patient_id}"
        )
        folder = folder / f"{magnification}X"
        folder.mkdir(parents=True, exist_ok=True)
        for seq in range(1, images_per_patient + 1):
            name = f"SOB_{label[0].upper()}_{tumour}-{year}-{patient_id}-{magnification}-{seq:03d}.png"
            (folder / name).write_bytes(synth_png(rng, label == "malignant", style))
            written.append(folder / name)
            bar.update()
    bar.close()
    return written
