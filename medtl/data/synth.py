"""SynthCXR: procedurally generated chest-radiograph-like images with findings and masks.

Anatomy and findings are drawn analytically in normalised patient coordinates (u across, v
down, both in [-1, 1]); acquisition rotation and shift transform those coordinates, so images at
any size from 28 to 256 px and their masks line up exactly. Every image's parameters come from
``numpy.random.default_rng([seed, index])``: image *i* is the same whichever others are
generated. Rendering is vectorised over a batch of images (no per-pixel Python).

Findings are chosen to sit at different feature levels, the point of the study:

- ``nodule``: a small round dense blob (low-level);
- ``opacity``: a patchy textured density in the lower or peripheral zone (mid-level texture);
- ``effusion``: basal fluid density with a meniscus at the costophrenic angle (regional shape);
- ``cardiomegaly``: an enlarged heart shadow (a global shape cue).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from medtl.datasets import KINDS
from medtl.datasets import SYNTH_FINDINGS as FINDINGS

MIN_SIZE, MAX_SIZE = 28, KINDS["synthetic"].max_image_size
VERSION = 2  # bump when rendering changes: caches are keyed by it


def draw_params(seed: int, index: int, prevalence: dict[str, float], difficulty: float) -> dict[str, float]:
    """The random parameters of one image (anatomy, acquisition, findings)."""
    r = np.random.default_rng([seed, index])
    u = r.uniform
    easy = 1.0 - difficulty  # 1 = large, high-contrast findings; 0 = small, faint ones
    p = {
        # anatomy
        "thorax_rx": u(0.78, 0.9),
        "thorax_ry": u(0.86, 0.98),
        "thorax_cy": u(0.0, 0.1),
        "lung_cx": u(0.33, 0.42),
        "lung_cy": u(-0.12, 0.0),
        "lung_rx": u(0.24, 0.3),
        "lung_ry": u(0.5, 0.6),
        "lung_asym": u(-0.03, 0.03),
        "heart_cx": u(0.05, 0.12),
        "heart_cy": u(0.28, 0.36),
        "heart_scale": u(0.95, 1.08),
        "rib_phase": u(0, 1),
        "rib_gap": u(0.15, 0.19),
        "spine_w": u(0.09, 0.12),
        "clav_y": u(-0.62, -0.52),
        "soft_tissue": u(0.38, 0.46),
        # acquisition
        "rot": u(-5, 5) * np.pi / 180,
        "shift_u": u(-0.05, 0.05),
        "shift_v": u(-0.05, 0.05),
        "gain": u(0.85, 1.1),
        "gamma": u(0.85, 1.2),
        "noise": u(0.01, 0.035),
        "blur": u(0.004, 0.01),
        "texture_seed": int(r.integers(2**31)),
    }
    for f in FINDINGS:
        p[f] = float(r.random() < prevalence.get(f, 0.0))
    side = r.choice([-1.0, 1.0], size=3)
    ang, rad = u(0, 2 * np.pi), np.sqrt(u(0, 0.55))
    p.update(
        nodule_u=side[0] * p["lung_cx"] + rad * p["lung_rx"] * np.cos(ang),
        nodule_v=p["lung_cy"] + rad * p["lung_ry"] * 0.85 * np.sin(ang),
        nodule_r=u(0.045, 0.065) * (0.7 + 0.6 * easy),
        nodule_c=u(0.14, 0.2) * (0.5 + easy),
        opacity_u=side[1] * (p["lung_cx"] + u(0.0, 0.1)),
        opacity_v=p["lung_cy"] + u(0.1, 0.35),
        opacity_r=u(0.16, 0.22) * (0.8 + 0.4 * easy),
        opacity_c=u(0.12, 0.18) * (0.5 + easy),
        effusion_side=side[2],
        effusion_level=u(0.25, 0.45) * (0.7 + 0.6 * easy),
        effusion_c=u(0.16, 0.22) * (0.6 + easy),
        cardio_scale=1.0 + u(0.28, 0.4) * (0.5 + easy),
    )
    return p


def _stack(params: list[dict], key: str) -> torch.Tensor:
    return torch.tensor([p[key] for p in params], dtype=torch.float32)[:, None, None]


def _ellipse(u, v, cx, cy, rx, ry):
    return torch.sqrt(((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2)


def _soft(dist, edge):
    """1 inside (dist < 1), 0 outside, with a soft edge of width ``edge`` (in dist units)."""
    return ((1 - dist) / edge + 0.5).clamp_(0, 1)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of a (B, H, W) stack by its own sigma (pixels): a separable grouped conv."""
    b = x.shape[0]
    radius = max(1, int(math.ceil(3 * float(sigma.max()))))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t[None, :] / sigma.reshape(-1, 1).clamp(min=1e-3)) ** 2)
    k = k / k.sum(dim=1, keepdim=True)
    y = F.pad(x[None], (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, k.view(b, 1, 1, -1), groups=b)
    return F.conv2d(y, k.view(b, 1, -1, 1), groups=b)[0]


def _texture(params: list[dict], size: int) -> torch.Tensor:
    """Smooth unit-variance noise per image: drawn at low resolution (cheap, per-index seeded), upsampled."""
    low = 16
    noise = np.stack(
        [np.random.default_rng(p["texture_seed"]).standard_normal((low, low), dtype=np.float32) for p in params]
    )
    tex = F.interpolate(torch.from_numpy(noise)[:, None], size=(size, size), mode="bicubic", align_corners=False)[:, 0]
    return tex / (tex.std(dim=(1, 2), keepdim=True) + 1e-6)


@torch.no_grad()
def render(params: list[dict], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (B, size, size) uint8 and masks (B, 4, size, size) bool for parameter dicts."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"SynthCXR image size must be between {MIN_SIZE} and {MAX_SIZE} px. Got {size}")
    P = lambda k: _stack(params, k)  # noqa: E731
    b = len(params)
    g = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    v0, u0 = torch.meshgrid(g, g, indexing="ij")
    rot, su, sv = P("rot"), P("shift_u"), P("shift_v")
    u = torch.cos(rot) * (u0 - su) + torch.sin(rot) * (v0 - sv)  # patient coordinates of each pixel
    v = -torch.sin(rot) * (u0 - su) + torch.cos(rot) * (v0 - sv)
    edge = 4.0 / size

    thorax = _soft(_ellipse(u, v, 0, P("thorax_cy"), P("thorax_rx"), P("thorax_ry")), edge * 3)
    lcx, lcy, lrx, lry, asym = P("lung_cx"), P("lung_cy"), P("lung_rx"), P("lung_ry"), P("lung_asym")
    lungs_d = torch.minimum(_ellipse(u, v, -lcx, lcy + asym, lrx, lry), _ellipse(u, v, lcx, lcy - asym, lrx, lry))
    lungs = _soft(lungs_d, edge * 4)
    hs = P("heart_scale") * torch.where(P("cardiomegaly") > 0, P("cardio_scale"), torch.ones(()))
    heart_d = _ellipse(u, v, P("heart_cx") * hs, P("heart_cy"), 0.24 * hs, 0.2 * hs)
    heart = _soft(heart_d, edge * 3)
    spine = (1 - u.abs() / P("spine_w")).clamp(0, 1).sqrt() * (v > -0.9)
    rib_wave = torch.cos(2 * math.pi * ((v - 0.72 * u**2) / P("rib_gap") + P("rib_phase")))
    ribs = (rib_wave * 3 - 2).clamp(0, 1) * thorax
    clav = torch.exp(-(((v - P("clav_y") - 0.12 * u.abs()) / 0.025) ** 2)) * ((u.abs() < 0.6) & (u.abs() > 0.08))

    img = 0.04 + P("soft_tissue") * thorax - 0.28 * lungs * thorax + 0.1 * ribs * (0.5 + lungs)
    img = img + 0.22 * spine * thorax + 0.3 * heart + 0.14 * clav

    masks = torch.zeros((b, len(FINDINGS), size, size), dtype=torch.bool)
    has = {f: P(f) > 0 for f in FINDINGS}
    # nodule: a dense disc
    nod_d = _ellipse(u, v, P("nodule_u"), P("nodule_v"), P("nodule_r"), P("nodule_r"))
    img = img + has["nodule"] * P("nodule_c") * _soft(nod_d, edge * 2) ** 1.5
    masks[:, 0] = has["nodule"] & (nod_d < 1)
    # opacity: smooth noise thresholded inside a zone of one lung (texture only where present)
    sel = [i for i, p in enumerate(params) if p["opacity"] > 0]
    if sel:
        ix = torch.tensor(sel)
        Ps = lambda k: P(k)[ix]  # noqa: E731
        zone = _soft(
            _ellipse(u[ix], v[ix], Ps("opacity_u"), Ps("opacity_v"), Ps("opacity_r"), Ps("opacity_r") * 0.8), 0.5
        )
        patch = (_texture([params[i] for i in sel], size) * 0.8 + 0.3).clamp(0, 1) * zone * (lungs[ix] > 0.5)
        img[ix] += Ps("opacity_c") * patch * 2
        masks[ix, 1] = patch > 0.15
    # effusion: fluid filling the base of one lung, its surface rising laterally (meniscus)
    side = P("effusion_side")
    lat = (u * side / 0.7).clamp(0, 1)
    surface = lcy + lry * (1 - 2 * P("effusion_level")) - 0.25 * lat**2
    fluid = (lungs > 0.5) * (u * side > 0.05) * ((v - surface) / (edge * 3) + 0.5).clamp(0, 1)
    img = img + has["effusion"] * P("effusion_c") * fluid * 1.6
    masks[:, 2] = has["effusion"] & (fluid > 0.5)
    # cardiomegaly: the heart itself is enlarged (above); its mask is the heart shadow
    masks[:, 3] = has["cardiomegaly"] & (heart_d < 1)

    img = P("gain") * img.clamp(min=0) ** P("gamma")
    img = _gaussian_blur(img, P("blur").ravel() * size)
    noise = np.stack(
        [np.random.default_rng(p["texture_seed"] + 1).standard_normal((size, size), dtype=np.float32) for p in params]
    )
    img = img + P("noise") * torch.from_numpy(noise)
    return (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy(), masks.numpy()


def generate(
    n: int,
    size: int = 64,
    seed: int = 0,
    prevalence: dict[str, float] | None = None,
    difficulty: float = 0.5,
    indices: np.ndarray | None = None,
    batch: int = 256,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (N, 1, size, size) uint8, labels (N, 4) float32 and masks (N, 4, size, size) bool.

    Args:
        n: number of images (indices 0..n-1), unless ``indices`` picks specific ones.
        prevalence: finding -> probability (default 0.25 for each).
        difficulty: 0 (large, high-contrast findings) to 1 (small, faint ones).
    """
    if not 0 <= difficulty <= 1:
        raise ValueError(f"difficulty must be in [0, 1]. Got {difficulty}")
    prevalence = {f: 0.25 for f in FINDINGS} if prevalence is None else prevalence
    unknown = set(prevalence) - set(FINDINGS)
    if unknown:
        raise ValueError(f"Unknown finding(s) {sorted(unknown)}. SynthCXR findings: {', '.join(FINDINGS)}")
    for f, p in prevalence.items():
        if not 0 <= p <= 1:
            raise ValueError(f"prevalence of {f} must be in [0, 1]. Got {p}")
    idx = np.arange(n) if indices is None else np.asarray(indices)
    images = np.empty((idx.size, 1, size, size), np.uint8)
    masks = np.empty((idx.size, len(FINDINGS), size, size), bool)
    labels = np.empty((idx.size, len(FINDINGS)), np.float32)
    starts = range(0, idx.size, batch)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"SynthCXR {idx.size} x {size}px", unit="batch")
    for s in starts:
        params = [draw_params(seed, int(i), prevalence, difficulty) for i in idx[s : s + batch]]
        images[s : s + batch, 0], masks[s : s + batch] = render(params, size)
        labels[s : s + batch] = [[p[f] for f in FINDINGS] for p in params]
    return images, labels, masks
