"""The downstream detector: torchvision's Mask R-CNN on a small backbone trained from scratch.

Everything that makes it Mask R-CNN is torchvision's (``MaskRCNN``: its own resize and normalisation,
region proposal network, RoIAlign, box and mask heads, losses and post-processing); this file only sizes
it for two CPU cores. The backbone is a stack of stride-2 stages (two 3x3 conv + GroupNorm + ReLU each:
GroupNorm because detection batches are small) whose last three stages feed torchvision's feature
pyramid; one anchor size per pyramid level, aspect ratios from wide cars to tall persons. No pretrained
weights: the pipeline works offline, and every arm starts from the same seeded initialisation.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from torch import nn

from pipeline.config import DetectorConfig

# torchvision's detection modules are imported where the detector is built: importing them pulls in
# torch._dynamo (2-3 s on 2 cores), which every downstream run would pay while the detector is off by default.
if TYPE_CHECKING:
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import BackboneWithFPN

# Height / width of the anchors: a car seen from the side is wide, a person about three times as tall.
ASPECT_RATIOS = (0.5, 1.0, 2.0, 3.0)
# The smallest anchor side at the finest pyramid level, in pixels of the resized image; x2 per level.
SMALLEST_ANCHOR = 8


def stage(cin: int, cout: int) -> nn.Sequential:
    """Halve the resolution: a stride-2 3x3 conv and a 3x3 conv, each GroupNorm + ReLU."""
    groups = min(8, cout)
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.GroupNorm(groups, cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.GroupNorm(groups, cout), nn.ReLU(inplace=True),
    )


def backbone(widths: list[int], fpn_channels: int) -> BackboneWithFPN:
    """Stride-2 stages of ``widths``; torchvision's FPN (plus its max-pool level) on the last three."""
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    chans = [3, *widths]
    body = nn.Sequential(OrderedDict((f"stage{i}", stage(chans[i], chans[i + 1])) for i in range(len(widths))))
    read = list(range(len(widths) - 3, len(widths)))
    return BackboneWithFPN(body, {f"stage{i}": str(k) for k, i in enumerate(read)}, [widths[i] for i in read],
                           fpn_channels, extra_blocks=LastLevelMaxPool())


def build_detector(cfg: DetectorConfig, num_classes: int) -> MaskRCNN:
    """Mask R-CNN for ``num_classes`` object classes (plus background), sized by ``cfg``."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    c = cfg.fpn_channels
    levels = ("0", "1", "2")  # the FPN's outputs RoIAlign reads; "pool" (the fourth) serves proposals only
    # One anchor size per level (three FPN levels and the pool level), doubling with the level's stride.
    sizes = tuple((SMALLEST_ANCHOR * 2**k,) for k in range(len(levels) + 1))
    anchors = AnchorGenerator(sizes, (ASPECT_RATIOS,) * len(sizes))
    return MaskRCNN(
        backbone(cfg.widths, c),
        num_classes=None,
        min_size=cfg.min_size, max_size=cfg.max_size,
        rpn_anchor_generator=anchors,
        # Fewer proposals than torchvision's defaults (2000 / 1000): street frames at this size hold tens of
        # objects, and every proposal costs RoIAlign and head time on the CPU.
        rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=150,
        box_roi_pool=MultiScaleRoIAlign(levels, output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(c * 7 * 7, 256),
        box_predictor=FastRCNNPredictor(256, num_classes + 1),
        box_batch_size_per_image=128,
        mask_roi_pool=MultiScaleRoIAlign(levels, output_size=14, sampling_ratio=2),
        mask_head=MaskRCNNHeads(c, [c, c], 1),
        mask_predictor=MaskRCNNPredictor(c, c, num_classes + 1),
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

