"""Parameter tables of the corruptions, as data.

ImageNet-C: D. Hendrycks and T. Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations", ICLR 2019. One entry per severity 1..5, in the units of the reference implementation
(images in [0, 1], sizes in pixels of a 224 x 224 image). Speckle noise is from the paper's extra set.

ES-WMV: H. Wang, T. Li, Z. Zhuang, T. Chen, H. Liang, J. Sun, "Early Stopping for Deep Image Prior",
TMLR 2023. The paper corrupts images at a low / medium / high level: Gaussian std 0.12 / 0.18 / 0.26
(ImageNet-C severities 2 / 3 / 4) and impulse noise on 30 / 50 / 70 % of the values. For shot and speckle
noise the same ImageNet-C severities 2 / 3 / 4 are used.
"""

from __future__ import annotations

# Additive Gaussian noise: standard deviation.
GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)
# Poisson (shot) noise: photons per unit intensity, x -> Poisson(x * c) / c (smaller = stronger).
SHOT_NOISE = (60, 25, 12, 5, 3)
# Salt-and-pepper noise: fraction of values replaced (half by 0, half by 1).
IMPULSE_NOISE = (0.03, 0.06, 0.09, 0.17, 0.27)
# Multiplicative noise x -> x + x * N(0, c^2): standard deviation c.
SPECKLE_NOISE = (0.15, 0.2, 0.35, 0.45, 0.6)

# Defocus: (disk radius px, std of the Gaussian that anti-aliases the disk px).
DEFOCUS_BLUR = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
# Glass: (Gaussian std px, largest pixel swap distance px, swap passes).
GLASS_BLUR = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))
# Motion: (radius px, sigma px) of ImageMagick's motion blur; the angle is uniform in [-45, 45] degrees.
MOTION_BLUR = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))
MOTION_BLUR_ANGLE = (-45.0, 45.0)
# Zoom: (first, last, step) of the zoom factors averaged with the image. These are the values the
# reference np.arange calls yield: arange(1, 1.11, 0.01) ends at 1.11 through floating rounding.
ZOOM_BLUR = ((1.0, 1.11, 0.01), (1.0, 1.15, 0.01), (1.0, 1.20, 0.02), (1.0, 1.24, 0.02), (1.0, 1.30, 0.03))

# Snow: (mean, std of the flake noise, zoom of the flake layer, threshold, motion radius px,
# motion sigma px, weight of the image in the grey-lift blend). Flake streak angle uniform in [-135, -45].
SNOW = (
    (0.1, 0.3, 3.0, 0.5, 10, 4, 0.8),
    (0.2, 0.3, 2.0, 0.5, 12, 4, 0.7),
    (0.55, 0.3, 4.0, 0.9, 12, 8, 0.7),
    (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
    (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
)
SNOW_ANGLE = (-135.0, -45.0)
# Frost: (weight of the image, weight of the frost texture).
FROST = ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))
# Fog: (strength of the plasma fractal, its decay per octave; smaller decay = more fine structure).
FOG = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))
FOG_MAP_SIZE = 256  # plasma map side of the reference (it crops 224 x 224 out of it)

# Brightness: amount added to the HSV value channel.
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
# Contrast: factor applied to the deviation from the per-channel mean.
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
# Elastic: (alpha, sigma, affine jitter) in pixels of the reference, which wrote them as 244 * f for
# 224-pixel images; here they scale with the short side as side * 244 / 224 * f.
ELASTIC_TRANSFORM = (
    (2.0, 0.7, 0.1),
    (2.0, 0.08, 0.2),
    (0.05, 0.01, 0.02),
    (0.07, 0.01, 0.02),
    (0.12, 0.01, 0.02),
)
ELASTIC_SCALE = 244.0 / 224.0
# Pixelate: fraction of the side kept by the box downsampling.
PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)
# JPEG: Pillow quality.
JPEG_COMPRESSION = (25, 18, 15, 10, 7)

# ES-WMV levels: low, medium, high.
ESWMV_LEVEL_LABELS = ("low", "medium", "high")
ESWMV_LEVELS: dict[str, tuple[float, float, float]] = {
    "gaussian_noise": (0.12, 0.18, 0.26),  # std
    "shot_noise": (25, 12, 5),  # photons per unit intensity
    "impulse_noise": (0.3, 0.5, 0.7),  # fraction of values replaced
    "speckle_noise": (0.2, 0.35, 0.45),  # std of the multiplicative noise
}

# The DIP benchmark's "sigma = 25" is std 25/255; these are the usual choices offered in the UI.
GAUSSIAN_SIGMA_CHOICES = (5, 10, 15, 25, 50)
