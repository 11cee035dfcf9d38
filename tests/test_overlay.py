"""Maps drawn over their images (medtl/overlay.py)."""

import io

import numpy as np
from PIL import Image

from medtl.overlay import overlay, to_png


def test_overlay_keeps_the_image_where_the_map_is_zero_and_outlines_the_mask():
    image = np.full((1, 8, 8), 100, np.uint8)
    cam = np.zeros((8, 8))
    cam[2, 2] = 3.0
    mask = np.zeros((8, 8), bool)
    mask[4:7, 4:7] = True
    rgb = overlay(image, cam, mask)
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == 100).all()  # no saliency: the radiograph as it is
    assert not (rgb[2, 2] == 100).all()  # the peak in colour
    assert (rgb[4, 4] == 255).all() and (rgb[5, 5] == 100).all()  # the outline white, its inside untouched
    assert (overlay(image, np.zeros((8, 8))) == 100).all()  # an all-zero map draws nothing


def test_to_png_scales_with_whole_pixels():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    im = Image.open(io.BytesIO(to_png(rgb, scale=3)))
    assert im.size == (18, 12)
    px = np.asarray(im)
    assert (px[:3, :3] == (255, 0, 0)).all() and (px[3:, 3:] == 0).all()
