"""The insertion GAN (insertion-gan.md): where (box) and what (shape) generators, trained jointly.

``InsertionGAN`` is the whole model with its losses; the affine helpers convert boxes and place patches.
"""

from pipeline.models.affine import box_to_theta, theta_to_box, warp
from pipeline.models.insertion_gan import (
                                           InsertionGAN,
                                           check_sizes,
                                           coord_loss,
                                           occupancy_loss,
                                           support_loss,
                                           theta_loss,
)

__all__ = ["InsertionGAN", "box_to_theta", "check_sizes", "coord_loss", "occupancy_loss", "support_loss", "theta_loss",
           "theta_to_box", "warp"]
