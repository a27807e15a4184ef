"""The networks, one file per family: the insertion GAN (``insertion_gan``: where + what generators, their
VAE encoders and discriminators, built from ``where_net``, ``what_net``, ``discriminators``, ``affine`` and
``blocks``), the pix2pixHD-style renderer (``renderer``) and the part network (``part_net``).

Import from the submodules: this package imports none of them, so a stage that loads one family does
not depend on (nor is its saved work keyed to) the code of another.
"""
