"""Chinese signs in the simulated footage (a clinic in China has no English "DISPENSARY" sign).
OpenCV draws only ASCII: the text is drawn with Pillow in a CJK font of the system. Without one the
sign stays blank rather than falling back to English."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
             "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc")


@lru_cache(maxsize=8)
def _font(px: int):
    for path in CJK_FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, px)
    return None


def draw_sign(img: np.ndarray, text: str, left_bottom: tuple[int, int], px: int,
              color: tuple[int, int, int] = (245, 245, 245)) -> bool:
    """Draw ``text`` (BGR image, in place) with its baseline at ``left_bottom``; False if no CJK font."""
    font = _font(max(8, int(px)))
    if font is None:
        return False
    x, y = left_bottom
    top = max(0, y - int(px * 1.4))
    patch = Image.fromarray(np.ascontiguousarray(img[top:y + int(px * 0.4), :, ::-1]))
    ImageDraw.Draw(patch).text((x, y - top), text, font=font, fill=tuple(reversed(color)), anchor="ls")
    img[top:y + int(px * 0.4)] = np.asarray(patch)[:, :, ::-1]
    return True
