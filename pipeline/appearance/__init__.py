"""Appearance for inserted objects: semi-parametric, from a memory bank of real crops (PasteGAN-style).

``CropBank`` retrieves the real instance that best fits a generated shape in its target context;
``paste`` warps it into the box, blends it in and harmonises its colour.
"""

from pipeline.appearance.crop_bank import Crop, CropBank
from pipeline.appearance.paste import context_colour, paste

__all__ = ["Crop", "CropBank", "context_colour", "paste"]
