"""Typed configuration, loaded from ``params.yaml``: one place for every default.

Each section is a dataclass; ``load_config`` fills them from the YAML file and refuses unknown keys,
wrongly typed values and values outside their range, choices or length with a message that names the
file and the key (``params.yaml: synthetic.width: expected int, got 'wide'``, ``params.yaml: train.steps:
expected >= 1, got -5``). Ranges, choices and lengths are part of a field's type (``Positive``,
``Share``, ``Device``, ``Size``, ...: ``typed_params.py``); what ties several fields together is in a
section's ``validate``. Stages read only their sections, so DVC tracks exactly those params.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import yaml

from pipeline.errors import ConfigError
from pipeline.labels import BY_NAME, INSTANCE_IDS
from pipeline.typed_params import (
    Betas,
    Count,
    Device,
    Length,
    OneOf,
    Positive,
    Range,
    Rate,
    Share,
    Size,
    Weight,
    Widths,
    from_dict,
)


@dataclass
class RulesConfig:
    """The placement rules' thresholds (docs/synthetic-scenes.md): the yardstick the metrics judge raw where
    samples, inserted objects and random boxes by. The augment stage filters candidates by its own
    (``augment.max_overlap``, ``augment.scale_band``)."""

    max_overlap: Share = 0.5  # an object may cover existing persons/cars with less than this share of it
    # [low, high] of its pixel height over a mean-sized object's at its contact row (the ground plane's)
    scale_band: Annotated[list[float], Length(2), Range(above=0)] = field(default_factory=lambda: [0.75, 1.33])
    # false: the fixed support table (labels.SUPPORT), each frame's camera file (else a plane fitted to its
    # own objects) and scale_band. true: learned from the train split's single objects by the prepare stage
    # ({prepare.out}/yardstick.json): the labels a class stands on, one ground plane for the dataset, and
    # the scale band that holds `scale_coverage` of them - for real datasets without cameras.
    learned: bool = False
    support_min_share: Share = 0.02  # learned: a label is ground when this share of a class's objects stand on it
    scale_coverage: Share = 0.95  # learned: the central share of the train objects' scale ratios the band holds

    def validate(self, where: str) -> None:
        lo, hi = self.scale_band
        if lo > hi:
            raise ConfigError(f"{where}.scale_band: expected [low, high] with low <= high, got {[lo, hi]}")


@dataclass
class SyntheticConfig:
    """The built-in street-scene dataset (docs/synthetic-scenes.md)."""

    out: str = "data/synthetic"
    width: int = 512
    height: int = 256
    splits: dict[str, int] = field(default_factory=lambda: {"train": 600, "val": 100, "test": 300})
    cities: list[str] = field(default_factory=lambda: ["simtown", "simville", "simburg"])
    persons_per_frame: Annotated[list[int], Length(2)] = field(default_factory=lambda: [2, 9])  # inclusive range
    cars_per_frame: Annotated[list[int], Length(2)] = field(default_factory=lambda: [1, 6])
    crosswalk_prob: Share = 0.15  # share of frames where a few persons cross the road
    # look-alikes tried per frame (inclusive range): posters, mannequins, statues labelled building
    decoys_per_frame: Annotated[list[int], Length(2)] = field(default_factory=lambda: [2, 5])
    workers: Count = 0  # processes for generation; 0 = one per CPU core

    def validate(self, where: str) -> None:
        if self.width < 64 or self.height < 32:
            raise ConfigError(f"{where}.width/height: at least 64x32 needed, got {self.width}x{self.height}")
        for key, (lo, hi) in {"persons_per_frame": self.persons_per_frame,
                              "cars_per_frame": self.cars_per_frame,
                              "decoys_per_frame": self.decoys_per_frame}.items():
            if not 0 <= lo <= hi:
                raise ConfigError(f"{where}.{key}: expected [min, max] with 0 <= min <= max, got {[lo, hi]}")
        if any(n < 0 for n in self.splits.values()):
            raise ConfigError(f"{where}.splits: frame counts must be >= 0, got {self.splits}")
        if not self.cities:
            raise ConfigError(f"{where}.cities: at least one city name is needed")


@dataclass
class CocoConfig:
    """How a COCO dataset's categories map onto the pipeline's (Cityscapes) classes.

    ``category_map`` maps a COCO category name to a Cityscapes label name. A category not in the map
    whose name is a Cityscapes label name keeps that class (so Cityscapes-as-COCO files read back as
    they were written); any other category becomes ``unmapped`` (a Cityscapes label name, or
    ``unlabeled`` to ignore it).
    """

    category_map: dict[str, str] = field(default_factory=lambda: {"person": "person", "car": "car"})
    unmapped: str = "dynamic"


@dataclass
class SemanticConfig:
    """A semantic-label dataset (``data.format: semantic``, ``datasets/semantic.py``): per split a list file of
    ``image label`` lines, or an image folder and a label folder (paths relative to ``data.root``); the
    dataset's class ids mapped onto the pipeline's classes by name; the blob policy that turns connected
    components into objects (CamVid's values: the CamVid profile, README "Use your own dataset")."""

    lists: dict[str, str] = field(default_factory=dict)  # split -> list file ("image label" per line)
    images: dict[str, str] = field(default_factory=dict)  # split -> image folder (splits without a list)
    labels: dict[str, str] = field(default_factory=dict)  # split -> label folder
    label_suffix: str = ".png"  # label file = image stem + this, in the label folder
    classes: dict[int, str] = field(default_factory=dict)  # dataset id -> Cityscapes label name | ignore
    fragment_area: Count = 20  # components under this many pixels are fragments (crowd regions)
    # A component wider than this times its height is a group (crowd region), not one object ...
    single_max_aspect: dict[str, float] = field(default_factory=lambda: {"person": 0.7, "car": 2.8})
    # ... and so is one whose area over its convex hull's is under this.
    single_min_solidity: dict[str, float] = field(default_factory=lambda: {"person": 0.5, "car": 0.8})
    # ... and so is one whose top outline has two peaks this share of its height apart (heads side by side;
    # cars' windscreens and roofs make such peaks on single cars, so no car entry).
    group_peaks: dict[str, float] = field(default_factory=lambda: {"person": 0.12})

    def validate(self, where: str) -> None:
        for dataset_id, name in self.classes.items():
            if not 0 <= dataset_id < 65536:
                raise ConfigError(f"{where}.classes: id {dataset_id} is not a label-map value (0-65535)")
            if name != "ignore" and (name not in BY_NAME or BY_NAME[name].id <= 0):
                raise ConfigError(f"{where}.classes.{dataset_id}: {name!r} is not a Cityscapes label name "
                                  "(or 'ignore')")
        for key in ("single_max_aspect", "single_min_solidity", "group_peaks"):
            for name, value in getattr(self, key).items():
                if name not in BY_NAME or BY_NAME[name].id not in INSTANCE_IDS:
                    raise ConfigError(f"{where}.{key}: {name!r} is not a Cityscapes class with instances")
                if value <= 0:
                    raise ConfigError(f"{where}.{key}.{name}: expected > 0, got {value}")
        unknown = sorted((set(self.images) | set(self.labels)) - (set(self.images) & set(self.labels)))
        if unknown:
            raise ConfigError(f"{where}: split {unknown[0]!r} needs both an images and a labels folder")


@dataclass
class DataConfig:
    """The dataset the pipeline learns from and augments."""

    root: str = "data/synthetic"  # a Cityscapes tree, the image root of a COCO dataset, or a semantic dataset's
    format: str = "cityscapes"  # cityscapes | coco | semantic (checked in validate: its message names them)
    coco_annotations: dict[str, str] = field(default_factory=dict)  # split -> instances json (coco)
    # split -> the folder its COCO ``file_name``s are relative to (coco); a split not listed reads from ``root``
    coco_images: dict[str, str] = field(default_factory=dict)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)  # format: semantic

    def validate(self, where: str) -> None:
        if self.format not in ("cityscapes", "coco", "semantic"):
            raise ConfigError(f"{where}.format: expected 'cityscapes', 'coco' or 'semantic', got {self.format!r}")
        if self.format == "coco" and not self.coco_annotations:
            raise ConfigError(f"{where}.coco_annotations: a COCO dataset needs split -> json paths")
        if self.format == "semantic" and not self.semantic.classes:
            raise ConfigError(f"{where}.semantic.classes: a semantic-label dataset needs its class map "
                              "(dataset id -> Cityscapes label name or ignore)")
        extra = sorted(set(self.coco_images) - set(self.coco_annotations))
        if extra:
            raise ConfigError(f"{where}.coco_images: split {extra[0]!r} has no entry in coco_annotations")

    def image_root(self, split: str) -> str:
        """The folder the images of ``split`` are read from (COCO: per split; Cityscapes: the tree)."""
        return self.coco_images.get(split, self.root) if self.format == "coco" else self.root


@dataclass
class PrepareConfig:
    """Training examples for the insertion GAN, and the crop bank (the ``prepare`` stage)."""

    out: str = "data/prepared"
    classes: list[str] = field(default_factory=lambda: ["person", "car"])
    splits: list[str] = field(default_factory=lambda: ["train", "val"])
    where_size: Size = field(default_factory=lambda: [64, 32])  # W, H (reference 256 x 128)
    what_size: Size = field(default_factory=lambda: [128, 64])  # W, H (reference 1024 x 512)
    mask_size: int = 32  # the object's tight box resized to a square (reference 128)
    # Instance filters (pixels at the dataset's own resolution).
    min_area: Count = 150
    min_fill: Share = 0.25  # mask area / box area
    aspect: Annotated[list[float], Length(2), Range(above=0)] = field(default_factory=lambda: [0.25, 6.0])  # h / w
    min_width: Count = 5
    min_height: Count = 12
    remove_object: bool = True  # fill the real object from its surroundings in x+ (reference: False)

    def validate(self, where: str) -> None:
        for name in self.classes:
            if name not in BY_NAME or BY_NAME[name].id not in INSTANCE_IDS:
                raise ConfigError(f"{where}.classes: {name!r} is not a Cityscapes class with instances")
        for key in ("where_size", "what_size"):
            w, h = getattr(self, key)
            # The encoders halve the map at least three times: both sides are multiples of 8. The frame's
            # aspect is kept (the prepare stage refuses a size of another aspect than the frames').
            if w % 8 or h % 8:
                raise ConfigError(f"{where}.{key}: width and height must be multiples of 8 (e.g. [64, 32] for "
                                  f"2:1 frames, [64, 48] for 4:3), got {[w, h]}")
        if self.mask_size < 16 or self.mask_size & (self.mask_size - 1):
            raise ConfigError(f"{where}.mask_size: a power of two >= 16, got {self.mask_size}")


@dataclass
class ModelConfig:
    """Widths of the insertion GAN. Sizes come from ``prepare``; the reference's are one setting away:
    where_widths [32, 64, 128, 256, 256], what_widths [32, 64, 128, 256, 256, 256, 256], what_embed 512,
    shape_widths [256, 256, 128, 64, 32] with where_size 256x128, what_size 1024x512, mask_size 128."""

    z_where: Positive = 5  # the density where model reads 5 numbers (the GAN's where module: any)
    z_what: Positive = 16
    where_widths: Widths = field(default_factory=lambda: [16, 32, 64])
    where_embed: Positive = 128
    what_widths: Widths = field(default_factory=lambda: [16, 32, 64, 64])
    what_embed: Positive = 128
    shape_widths: Widths = field(default_factory=lambda: [64, 32, 16])
    d_widths: Widths = field(default_factory=lambda: [16, 32, 64])
    # Not in the reference: z_what also enters the shape generator beside the embedding (the reference
    # tiles it at the what net's input only, where the conv encoder may wash it out).
    z_what_to_shape: bool = True
    # Not in the reference: ``density`` replaces the where generator (and its VAE encoder, D_affine and
    # D_where) with a U-Net that scores every position of the scene and a box size there, trained by
    # maximum likelihood of the real boxes (models/where_net.py, WhereDensity). ``gan``: the reference's.
    where_model: typing.Annotated[str, OneOf(("gan", "density"))] = "density"


@dataclass
class LossConfig:
    adversarial: Weight = 1.0
    reconstruction: Weight = 10.0  # input and latent reconstructions
    supervised: Weight = 10.0  # L1 of the VAE path's affine and mask
    kl: Weight = 1.0
    kl_reduction: typing.Annotated[str, OneOf(("sum", "mean"))] = "sum"  # over latent dims; the reference: mean
    # Not in the reference: each z_what dim's KL counts as at least this many nats (0 = off), so the
    # what-VAE's encoder is not pushed to the prior (posterior collapse: shapes that ignore z_what).
    kl_free_bits: Annotated[float, Range(lo=0)] = 0.25
    # The reference: the generator also fools D_affine and D_shape on the VAE path's affine and mask.
    vae_adversarial: Weight = 0.0
    # Not in the reference (0 = off): the what module is rewarded for shapes that change with z_what
    # (1 / the mean shape change per unit of z change, path u drawn twice).
    mode_seeking: Weight = 0.05
    coord: Weight = 1.0
    theta: Weight = 1.0
    # Not in the reference: a hinge on the share of a random-z box that covers existing persons/cars
    # (0 = the reference's losses only). Without it new cars land on the scene's parked cars. With the
    # density where model: the density's mass on cells where a box of the mean size read there would.
    occupancy: Weight = 3.0
    occupancy_free: Share = 0.25  # the share of a box that may cover existing objects before it costs
    # Not in the reference: the distance (where pixels) from a random-z box's bottom edge to labels its
    # class is seen standing on in the training data (0 = off). Learned ground, not a hand-written table.
    # With the density where model: the density's mass on cells where the bottom row of a box of the mean
    # size read there is neither that ground nor an existing object.
    support: Weight = 2.0
    # How far (where-resolution pixels) the support loss's distance field reaches: a box's bottom edge this
    # far from ground still feels which way the ground is; farther away it costs the same everywhere.
    support_reach: Positive = 16
    # A label counts as ground a class stands on when at least this share of the class's real contacts
    # rest on it (rare labels under a few boxes - a kerb pixel, a mislabelled edge - do not).
    support_min_share: Share = 0.02
    # Not in the reference (0 = off): a random-z box's height against what a mean-sized object of its class
    # is where the box stands, under the frame's ground plane (its camera, else fitted to its own objects);
    # free within a factor exp(ground_scale_free).
    ground_scale: Weight = 0.0
    ground_scale_free: Annotated[float, Range(lo=0)] = 0.15
    # Not in the reference (0 = off): D_where also learns that a box on one of the scene's own persons/cars
    # is fake (real examples never show one), so the where module learns to avoid existing objects.
    occupied_negatives: Weight = 0.0
    # Not in the reference (0 = off): a placement discriminator reads the scene at points inside and under a
    # box (models/discriminators.py); the random-z boxes are trained to fool it with this weight.
    placement_adversarial: Weight = 0.0
    # The density where model's negative log-likelihood of the real boxes (``model.where_model: density``).
    where_nll: Weight = 1.0


@dataclass
class TrainConfig:
    out: str = "models/insertion"
    checkpoint_dir: str = "models/checkpoints/insertion"  # kept between runs (DVC persist) for resuming
    log_dir: str = "dvclive/train"  # dvclive: loss curves and sample grids
    # The GAN's own seed (initial weights, batches, latent draws); None: the top-level ``seed``. Set alone, it
    # retrains the GAN while the dataset, the arms' draws and the scoring keep theirs: replicates over trainings.
    seed: int | None = None
    steps: Positive = 3600
    batch_size: Positive = 16
    lr: Rate = 2e-4
    # The density where model's learning rate (``model.where_model: density``): it learns by likelihood, a
    # steadier objective than the adversarial nets' (their lr is ``lr``).
    density_lr: Rate = 1e-3
    betas: Betas = field(default_factory=lambda: [0.5, 0.999])
    g_steps_per_d: Positive = 2  # generator updates per discriminator update
    flip_prob: Share = 0.5
    # per class of prepare.classes, in (0, 1]: the smallest box side of a random-z sample, a share of the frame
    min_scale: Annotated[dict[str, float], Range(above=0, hi=1)] = field(
        default_factory=lambda: {"person": 0.02, "car": 0.02})
    checkpoint_every: Positive = 200
    log_every: Positive = 50
    sample_every: Positive = 400
    device: Device = "auto"  # auto | cpu | cuda
    eval_samples_per_frame: Positive = 4  # raw where samples per val frame and class, scored after training
    losses: LossConfig = field(default_factory=LossConfig)


@dataclass
class AppearanceConfig:
    """How inserted objects get their pixels: ``paste`` (a real crop from the crop bank, PasteGAN-style
    retrieval), ``gan`` (the trained renderer draws them from the new label map) or ``gan+parts`` (the same,
    conditioned on part maps the part network infers from each object's shape)."""

    mode: Annotated[str, OneOf(("paste", "gan", "gan+parts"))] = "paste"
    renderer: str = "models/renderer"  # the trained renderer and part network (train_renderer's out; gan modes)
    # Paste: the crop bank and how a crop is chosen and blended.
    crops: str = "data/prepared/crops/train"  # the crop bank (``prepare`` stage); train crops only
    top_k: int = 4  # the frame's random generator picks among the k best-scoring crops
    scale_weight: Weight = 0.3  # cost per unit |log(target height / crop height)|: little resampling
    aspect_weight: Weight = 0.5  # cost per unit |log| of the box aspect-ratio change
    colour_weight: Weight = 1.0  # cost of context colour distance (RGB / 255, Euclidean)
    label_mask: str = "intersect"  # intersect: generated shape AND crop mask | crop: the crop's own mask
    blend: str = "gaussian"  # none | gaussian | poisson
    feather: Weight = 1.0  # gaussian blend: sigma in pixels of the feathered edge (inside the object)
    harmonize: float = 0.5  # 0..1: how far the crop's colours move toward the target context's

    def validate(self, where: str) -> None:
        if self.blend not in ("none", "gaussian", "poisson"):
            raise ConfigError(f"{where}.blend: expected none, gaussian or poisson, got {self.blend!r}")
        if self.label_mask not in ("intersect", "crop"):
            raise ConfigError(f"{where}.label_mask: expected intersect or crop, got {self.label_mask!r}")
        if self.top_k < 1:
            raise ConfigError(f"{where}.top_k: at least 1, got {self.top_k}")
        if not 0 <= self.harmonize <= 1:
            raise ConfigError(f"{where}.harmonize: expected a value in [0, 1], got {self.harmonize}")


@dataclass
class AugmentConfig:
    """The ``augment`` stage: insert new objects into every frame and write the augmented dataset."""

    out: str = "data/augmented"
    model: str = "models/insertion"  # a trained insertion GAN (the train stage's out)
    splits: list[str] = field(default_factory=lambda: ["train"])
    # objects kept per frame and class; the classes are inserted in this order
    per_frame: dict[str, int] = field(default_factory=lambda: {"person": 2, "car": 1})
    candidates: int = 24  # (z_where, z_what) samples drawn per class and frame, in one batch
    # Candidate rules (a candidate failing one is rejected; the next one is tried).
    max_overlap: Share = 0.25  # share of the object on existing (or already inserted) persons/cars
    min_area: Count = 150  # pixels of the object's whole mask
    # [low, high] of height / the ground plane's prediction (camera file, else a fitted ground plane)
    scale_band: Annotated[list[float], Length(2)] = field(default_factory=lambda: [0.75, 1.33])
    # Not in the built-in default: candidates must stand on a label their class stands on (the rules' support
    # table, or with rules.learned the labels learned from the data).
    support: bool = False
    min_visible: Share = 0.6  # share of the new object left after nearer objects cover it
    # Existing instances an insertion covers: below either floor their remains become a crowd region.
    keep_min_pixels: Count = 100
    keep_min_share: Share = 0.25
    copy_originals: bool = True  # the original frames alongside the augmented ones (same tree, same COCO)
    on_error: str = "skip"  # skip: report a bad frame and go on | stop: abort the run
    device: Device = "auto"  # auto | cpu | cuda
    workers: int = 0  # processes, each loading the model once; 0 = one per CPU core
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)

    def validate(self, where: str) -> None:
        for name, n in self.per_frame.items():
            if name not in BY_NAME:
                raise ConfigError(f"{where}.per_frame: {name!r} is not a Cityscapes class")
            if n < 0:
                raise ConfigError(f"{where}.per_frame.{name}: expected >= 0, got {n}")
        if self.candidates < 1:
            raise ConfigError(f"{where}.candidates: at least 1, got {self.candidates}")
        if self.on_error not in ("skip", "stop"):
            raise ConfigError(f"{where}.on_error: expected skip or stop, got {self.on_error!r}")
        lo, hi = self.scale_band
        if not 0 < lo <= hi:
            raise ConfigError(f"{where}.scale_band: expected [low, high] with 0 < low <= high, got {[lo, hi]}")
        if self.workers < 0:
            raise ConfigError(f"{where}.workers: 0 (one per CPU core) or more, got {self.workers}")


@dataclass
class PartNetConfig:
    """The part network (iPOSE spirit): an object's part map from its shape."""

    size: Annotated[int, Range(lo=8)] = 64  # objects are cropped to their box, padded square, resized to size x size
    widths: Widths = field(default_factory=lambda: [16, 32, 64])
    steps: Positive = 400
    batch_size: Positive = 32
    lr: Rate = 0.002
    # Where the part maps it learns from come from: data (the dataset's own ``partIds``), builtin (the
    # built-in dataset at ``synthetic.out``: parts inferred from shape, iPOSE's point), or auto (data when
    # its train split has person/car part maps - Cityscapes and COCO have none - else builtin).
    source: str = "auto"

    def validate(self, where: str) -> None:
        if self.source not in ("auto", "data", "builtin"):
            raise ConfigError(f"{where}.source: expected auto, data or builtin, got {self.source!r}")


@dataclass
class RendererConfig:
    """The ``train_renderer`` stage: a pix2pixHD-style label-to-image generator (CPU profile by default;
    the reference: width 64, 4 downsamplings, 9 blocks, 3 discriminators of width 64)."""

    out: str = "models/renderer"
    checkpoint_dir: str = "models/checkpoints/renderer"
    log_dir: str = "dvclive/renderer"
    size: Size = field(default_factory=lambda: [256, 128])  # W, H the renderer draws
    width: Positive = 16
    downs: Positive = 3
    blocks: Count = 4
    upsample: str = "resize"  # resize (nearest + conv) | transpose (the reference's transposed convs)
    num_d: Positive = 2
    d_width: Positive = 32
    feature_channels: int = 0  # per-instance style code from the feature encoder (0 = none: measured better)
    clusters: Positive = 10  # k-means styles per class
    part_dropout: float = 0.5  # share of steps without part channels: one renderer serves gan and gan+parts
    crop: int = 64  # train on crop x crop windows around persons/cars (0 = whole frames): the pixels it draws
    steps: int = 1000
    batch_size: int = 4
    lr: Rate = 0.001
    betas: Betas = field(default_factory=lambda: [0.5, 0.999])
    feature_matching: float = 10.0
    reconstruction: float = 10.0  # L1 to the real frame; not in the reference (0 = off), which uses a VGG loss
    decay_from: Share = 0.5  # constant lr, then linear decay to 0 over the last half
    checkpoint_every: Positive = 250
    log_every: Positive = 50
    device: Device = "auto"
    part_net: PartNetConfig = field(default_factory=PartNetConfig)

    def validate(self, where: str) -> None:
        w, h = self.size
        if w % 2**self.downs or h % 2**self.downs:
            raise ConfigError(f"{where}.size: {w}x{h} must be divisible by {2**self.downs} (2 ** downs)")
        if self.crop < 0 or self.crop % 2**self.downs or self.crop > min(w, h):
            raise ConfigError(f"{where}.crop: {self.crop} must be divisible by {2**self.downs} and fit in {w}x{h}")
        if self.upsample not in ("transpose", "resize"):
            raise ConfigError(f"{where}.upsample: expected transpose or resize, got {self.upsample!r}")
        if min(self.feature_matching, self.reconstruction, self.feature_channels) < 0:
            raise ConfigError(f"{where}: feature_matching, reconstruction and feature_channels must be >= 0")
        if not 0 <= self.part_dropout <= 1:
            raise ConfigError(f"{where}.part_dropout: expected a value in [0, 1], got {self.part_dropout}")
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"{where}: steps and batch_size must be >= 1")


@dataclass
class DetectorConfig:
    """The downstream detector: torchvision's Mask R-CNN (RPN, RoIAlign, box and mask heads) on a small
    backbone trained from scratch (no pretrained weights offline). CPU-sized defaults; a GPU takes e.g.
    widths [32, 64, 128, 256], fpn_channels 128, min_size 512, max_size 1024, steps 4000, batch_size 8."""

    enabled: bool = False  # trained beside the segmenter in every arm: the opt-in path (and the GPU path)
    widths: Widths = field(default_factory=lambda: [16, 32, 64, 128])  # stride-2 stages; FPN reads the last three
    fpn_channels: Positive = 64
    min_size: Positive = 128  # torchvision's own resize: the shorter side, in pixels
    max_size: Positive = 256  # and the longer side's cap
    steps: Positive = 200
    batch_size: Positive = 4
    lr: Rate = 0.002  # AdamW, linear warm-up then cosine decay
    weight_decay: Weight = 0.0001
    warmup: Count = 20  # steps
    score_threshold: Share = 0.05  # detections kept for COCOeval
    probe_score: Share = 0.5  # detections the context probe counts


@dataclass
class DownstreamConfig:
    """The downstream experiment (stages ``downstream_test``, ``arms@N``, ``downstream@N-SEED``).

    Arms, each written as Cityscapes + COCO files: ``subset`` (N training frames spread over the train
    split), ``ours`` (the same + ``copies`` augmented versions of each, ``per_frame`` objects each, from the
    trained model), ``copy_paste`` (the same + versions with ours' very objects moved to uniformly random
    positions), ``rules`` (the same, random positions kept only when they pass the support / scale / overlap
    rules). Per arm and seed a compact segmenter (and with ``detector.enabled`` a Mask R-CNN) is
    trained, same schedule, same seed, and scored on ``test_split``."""

    out: str = "data/downstream"  # arms and the test split, as Cityscapes + COCO
    sizes: Annotated[list[int], Range(lo=1)] = field(default_factory=lambda: [40])  # subset sizes N (grid: [20, 40])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # training seeds of every arm
    # The dose: augmented versions of each subset frame in the inserted arms, and the objects inserted into
    # each (per class, in this order; empty = augment.per_frame).
    copies: Positive = 2
    per_frame: dict[str, int] = field(default_factory=lambda: {"person": 4, "car": 2})
    # Random positions the rules arm tries per object before giving up: most fail the rules (a car's scale
    # fits few rows). At N = 40 (2 copies of 4 persons + 2 cars) 200 tries placed 123 of ours' 155 cars,
    # 2,000 152, 5,000 153 (+12 s).
    rules_tries: Positive = 5000
    # The segmenter:
    size: Size = field(default_factory=lambda: [256, 128])  # W, H the segmenter sees
    widths: Widths = field(default_factory=lambda: [16, 32, 64])  # encoder widths of the segmenter
    crop: Count = 128  # training crops: crop x crop random windows of the frames (0 = whole frames)
    # 300 steps were far from trained (docs/history.md, "The segmenter's training budget"): 600 halve the late
    # loss and the seeds' spread.
    steps: Positive = 600
    batch_size: Positive = 8
    lr: Rate = 0.002
    # Cross-entropy weight per class (others 1): person pixels are about 1% of a frame, and unweighted the
    # 300 steps learned no person at all in 16 of 24 runs (person IoU 0 measures nothing).
    class_weights: dict[str, float] = field(default_factory=lambda: {"person": 4.0, "car": 2.0})
    log_every: Positive = 10  # the loss curve's points: mean loss over this many steps
    # The frames every arm is scored on: a labelled split the models never train on and no default was chosen
    # on (Cityscapes' test labels are empty, so there its val split; an unlabelled split is refused).
    test_split: str = "test"
    test_frames: Count = 0  # 0 = the whole test split
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    # How the eight models of a run (four arms, segmenter and detector) share the machine: each trains on
    # ``threads`` torch threads (the figures depend on it), ``workers`` of them side by side (they do not;
    # 0 = the CPU cores / threads, 1 on a GPU).
    threads: Positive = 1
    workers: Count = 0

    def validate(self, where: str) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"{where}.seeds: at least one seed, each once, got {self.seeds}")
        if len(set(self.sizes)) != len(self.sizes):
            raise ConfigError(f"{where}.sizes: each size once, got {self.sizes}")
        if not self.widths:
            raise ConfigError(f"{where}.widths: at least one width is needed")
        w, h = self.size
        step = 2 ** len(self.widths)
        if w % step or h % step:
            raise ConfigError(f"{where}.size: {w}x{h} must be divisible by {step} (2 ** len(widths))")
        if self.crop and (self.crop % step or self.crop > min(w, h)):
            raise ConfigError(f"{where}.crop: {self.crop} must be divisible by {step} and fit in {w}x{h}")
        for name, weight in self.class_weights.items():
            label = BY_NAME.get(name)
            if label is None or not 0 <= label.train_id < 255:
                raise ConfigError(f"{where}.class_weights: {name!r} is not a Cityscapes class with a train id")
            if not weight > 0:
                raise ConfigError(f"{where}.class_weights.{name}: must be > 0, got {weight}")
        for name, n in self.per_frame.items():
            if name not in BY_NAME:
                raise ConfigError(f"{where}.per_frame: {name!r} is not a Cityscapes class")
            if n < 0:
                raise ConfigError(f"{where}.per_frame.{name}: expected >= 0, got {n}")
        if len(self.detector.widths) < 3:
            raise ConfigError(f"{where}.detector.widths: at least 3 stages (the FPN reads the last three)")
        if self.detector.min_size > self.detector.max_size:
            raise ConfigError(f"{where}.detector.min_size: {self.detector.min_size} is above max_size "
                              f"{self.detector.max_size}")


@dataclass
class EvaluateConfig:
    """The ``evaluate`` stage: placement, shape, diversity, downstream gain, gallery, real frames."""

    split: str = "val"  # frames for the model's raw samples (shape, diversity)
    samples_per_frame: int = 4  # raw (z_where, z_what) draws per class and frame
    random_per_object: int = 4  # random placements of each inserted shape (the copy-paste baseline)
    diversity_frames: int = 20
    diversity_draws: int = 16  # latent draws per frame and class for the diversity figures
    gallery_frames: Count = 6
    # Val frames drawn in each render mode (paste, gan, gan+parts) for their segmentation score; 0 = skip.
    # Needs the trained renderer (augment.appearance.renderer, the train_renderer stage's out).
    render_frames: Count = 30
    real_root: str = "../shared/data/cityscapes-sample"  # real frames to insert into ("" = none); skipped when absent
    downstream: DownstreamConfig = field(default_factory=DownstreamConfig)
    device: Device = "auto"

    def validate(self, where: str) -> None:
        for key in ("samples_per_frame", "random_per_object", "diversity_frames", "diversity_draws"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: at least 1, got {getattr(self, key)}")


@dataclass
class Config:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    coco: CocoConfig = field(default_factory=CocoConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    renderer: RendererConfig = field(default_factory=RendererConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)

    @property
    def gan_seed(self) -> int:
        """The seed the insertion GAN trains with: ``train.seed``, or the top-level ``seed``."""
        return self.seed if self.train.seed is None else self.train.seed

    def validate(self, where: str) -> None:
        """What ties sections together."""
        sep = ": " if where.endswith((".yaml", ".yml")) else "."
        check_sizes(self.model, self.prepare, where)
        missing = [c for c in self.prepare.classes if c not in self.train.min_scale]
        if missing:
            raise ConfigError(f"{where}{sep}train.min_scale: no value for class {missing[0]!r} of prepare.classes")


def check_sizes(model: ModelConfig, prepare: PrepareConfig, where: str) -> None:
    """Refuse insertion-GAN widths and sizes that do not fit together, naming the params keys to change."""
    where = f"{where}{_sep(where)}"
    for key in ("where_widths", "what_widths", "shape_widths", "d_widths"):
        if not getattr(model, key):
            raise ConfigError(f"{where}model.{key}: at least one width is needed")
    for widths_key, size_key in (("where_widths", "where_size"), ("what_widths", "what_size")):
        n = len(getattr(model, widths_key))
        w, h = getattr(prepare, size_key)
        # The encoder halves the input n times and ends on a map of 2 to 16 cells a side (8x4 for 2:1 frames).
        if w % 2**n or h % 2**n or not (2 <= w >> n <= 16 and 2 <= h >> n <= 16):
            raise ConfigError(
                f"{where}model.{widths_key} has {n} entries, so prepare.{size_key} must be 2**{n} times a map of 2 "
                f"to 16 cells a side (e.g. {8 * 2**n}x{4 * 2**n} for 2:1 frames, {8 * 2**n}x{6 * 2**n} for 4:3; the "
                f"encoder halves it {n} times), got {w}x{h}"
            )
    n = len(model.shape_widths)
    if prepare.mask_size != 4 * 2**n:
        raise ConfigError(
            f"{where}model.shape_widths has {n} entries, so prepare.mask_size must be {4 * 2**n} "
            f"(the shape generator doubles a 4x4 map {n} times), got {prepare.mask_size}"
        )
    n = len(model.d_widths)
    if prepare.where_size[1] < 2 ** (n + 1):
        raise ConfigError(f"{where}model.d_widths has {n} entries: too many halvings for prepare.where_size "
                          f"{prepare.where_size}")
    if model.z_where < 1 or model.z_what < 1:
        raise ConfigError(f"{where}model.z_where and model.z_what must be >= 1, got {model.z_where}, "
                          f"{model.z_what}")


def _sep(where: str) -> str:
    return ": " if where.endswith((".yaml", ".yml")) or where == "params" else "."


def load_config(path: str | Path = "params.yaml") -> Config:
    """Read ``params.yaml`` into a ``Config``; missing keys take their defaults."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return from_dict(Config, raw, str(path))


