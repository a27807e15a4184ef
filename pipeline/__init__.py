"""Context-aware synthetic augmentation of segmentation datasets: learn where a person or car fits
in a street scene and what shape it has there, insert new instances, and emit the augmented dataset in
Cityscapes and COCO format."""

__version__ = "0.1.0"
