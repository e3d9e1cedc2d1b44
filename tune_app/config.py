"""Typed configuration of one experiment.

`TrialConfig` is everything one training run needs (data, model, augmentation, optimisation);
it is saved next to every checkpoint and is what `train()` takes. `ExperimentSpec` adds what
only the search needs. Field docs give meaning and units; `spec.py` builds these from YAML.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union


def doc(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING):
    """A dataclass field with its meaning attached (shown by error messages and the README)."""
    kwargs: dict[str, Any] = {"metadata": {"doc": text}}
    if default is not dataclasses.MISSING:
        kwargs["default"] = default
    if factory is not dataclasses.MISSING:
        kwargs["default_factory"] = factory
    return field(**kwargs)


@dataclass
class DatasetConfig:
    name: str = doc("registered dataset: digits, tiny-imagenet, cub200, hf, imagefolder", "digits")
    path: Optional[str] = doc("local copy (folder or hub id) read by the same loader as the hub", None)
    image_column: Optional[str] = doc("column holding the image; None = the preset's default", None)
    label_column: Optional[str] = doc("column holding the class index; None = the preset's default", None)
    image_size: Optional[int] = doc("side in pixels images are resized to (1 to 1024); None = the preset's", None)
    val_fraction: float = doc("fraction of the train split held out for validation (stratified)", 0.2)
    test_fraction: float = doc("fraction held out for test when the source has no test split", 0.2)
    split_seed: int = doc("seed of the stratified train/val(/test) split and of dataset.subset_per_class", 42)
    subset_per_class: int = doc(
        "quick runs: at most this many images of each class, drawn at random (seed: split_seed) from the "
        "train split before val (and a held-out test) is split off, and likewise from the source's test "
        "split; 0 = every image", 0)
    normalize: Literal["dataset", "imagenet", "none"] = doc(
        "per-channel normalisation: train-split statistics, the ImageNet constants, or none", "dataset")
    cache_dir: Optional[str] = doc(
        "where decoded uint8 arrays are cached; None = $TUNE_APP_CACHE, else ~/.cache/tune_app", None)


@dataclass
class AugmentConfig:
    hflip: float = doc("probability of a horizontal flip per image", 0.0)
    crop_padding: int = doc("random crop back to the input size after zero-padding this many pixels", 0)
    brightness: float = doc("colour jitter: max relative brightness change (0.2 = +-20 %)", 0.0)
    contrast: float = doc("colour jitter: max relative contrast change", 0.0)
    saturation: float = doc("colour jitter: max relative saturation change", 0.0)
    hue: float = doc("colour jitter: max hue shift, fraction of the colour wheel (<= 0.5)", 0.0)


@dataclass
class ModelConfig:
    name: str = doc("registered model: stage_cnn", "stage_cnn")
    stage_channels: list[int] = doc("output channels of each stage", factory=lambda: [64, 128, 256])
    stage_blocks: Union[int, list[int]] = doc(
        "blocks per stage (one int for every stage, or one per stage)", factory=lambda: [2, 2, 2])
    block: Literal["conv", "conv_gconv"] = doc(
        "conv: conv3x3-BN-ReLU; conv_gconv: conv3x3-BN-ReLU then grouped conv3x3-BN-ReLU", "conv")
    groups: int = doc("groups of the grouped conv (conv_gconv blocks); must divide the channels", 1)
    stem_channels: int = doc("channels of a conv3x3-BN-ReLU stem before stage 1; 0 = no stem", 0)
    bias: bool = doc("conv layers carry a bias (BN follows either way)", False)
    dropout: float = doc("dropout before the linear head", 0.0)


@dataclass
class TrainConfig:
    epochs: int = doc("epochs per trial (ASHA's max_t)", 10)
    batch_size: int = doc("training images per step", 128)
    eval_batch_size: int = doc("images per step when evaluating (no gradients, so larger)", 1024)
    optimizer: Literal["adam", "adamw", "sgd"] = doc("optimiser", "adam")
    lr: float = doc("peak learning rate", 1e-3)
    weight_decay: float = doc("L2 penalty (adam, sgd) or decoupled decay (adamw)", 0.0)
    momentum: float = doc("SGD momentum (ignored by adam/adamw)", 0.9)
    lr_schedule: Literal["constant", "cosine"] = doc("learning-rate schedule over the epochs", "constant")
    label_smoothing: float = doc("cross-entropy label smoothing", 0.0)
    seed: int = doc("seed of weights, batch order and augmentation", 0)
    device: Literal["auto", "cpu", "cuda"] = doc("auto = cuda when the trial has a GPU", "auto")
    amp: bool = doc("bf16 autocast on CUDA (ignored on CPU)", True)
    threads: int = doc("CPU threads for torch in this run; 0 = the trial's CPU share", 0)


@dataclass
class TrialConfig:
    """Everything one training run needs; saved with every checkpoint."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialConfig":
        return cls(
            dataset=DatasetConfig(**data.get("dataset", {})),
            augment=AugmentConfig(**data.get("augment", {})),
            model=ModelConfig(**data.get("model", {})),
            train=TrainConfig(**data.get("train", {})),
        )

    def with_overrides(self, overrides: dict[str, Any]) -> "TrialConfig":
        """Copy with dotted keys ("train.lr") replaced, as a trial's sampled values are."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            section, key = dotted.split(".", 1)
            data[section][key] = value
        return TrialConfig.from_dict(data)


@dataclass
class SearchConfig:
    algorithm: Literal["grid", "random", "optuna"] = doc(
        "grid: every grid point; random: num_samples configurations drawn at random from the domains; "
        "optuna: num_samples trials proposed by Optuna's search.sampler", "grid")
    sampler: Optional[Literal["tpe", "gp", "cmaes", "random", "qmc"]] = doc(
        "algorithm optuna only: Optuna's sampler (tpe, gp = Gaussian process, cmaes, random, qmc = "
        "quasi-Monte Carlo), seeded by search.seed; left out = tpe", None)
    num_samples: int = doc("grid: runs of each configuration, seeded train.seed, +1, ... (the ranking "
                           "averages them); random, optuna: number of trials", 1)
    metric: str = doc("metric the search, ASHA, the ranking, the race and retrain_best judge by: "
                      "val_accuracy, val_loss, val_top5_accuracy or val_macro_f1", "val_accuracy")
    mode: Literal["max", "min"] = doc("max or min; left out = the metric's natural direction "
                                      "(min for val_loss, max for the others)", "max")
    objectives: list[str] = doc(
        "two objectives: a validation metric (which becomes search.metric), then a cost of the model: "
        "params (trainable parameters), mflops (forward MFLOPs per image) or latency_ms (inference ms per "
        "image on the trial's device); each better in its natural direction, costs lower. retrain_best "
        "picks from the Pareto front; [] = one objective, search.metric", factory=list)
    seed: int = doc("seed of the searcher (random draws, Optuna's sampler)", 0)
    max_concurrent: int = doc("trials running at once; 0 = as many as resources allow", 0)
    max_failures: int = doc("times a crashed trial is restarted from its last checkpoint", 2)


@dataclass
class SchedulerConfig:
    name: Literal["asha", "hyperband", "median", "pbt", "none"] = doc(
        "asha: asynchronous successive halving; hyperband: synchronous HyperBand (its epoch budget is "
        "known up front); median: the median stopping rule; pbt: population based training (copies the best "
        "trials' weights into the worst and mutates their searched lr, weight_decay, momentum, label_smoothing "
        "or batch_size mid-run; no race); none: run every trial out", "asha")
    grace_period: int = doc("epochs every trial runs before asha or median may stop it", 1)
    reduction_factor: float = doc("asha, hyperband: keep 1/reduction_factor of the trials at each rung", 2.0)
    perturbation_interval: int = doc("pbt: epochs between two perturbations (must be < train.epochs)", 2)
    quantile_fraction: float = doc("pbt: the worst fraction of trials copies one of the best fraction, "
                                   "in (0, 0.5]", 0.25)
    # Default last, as measured (`python -m tune_app.bench --judge-ranking`, BENCHMARKS.md): on
    # three Tiny ImageNet grid searches, at the rung where the kinds differ (epoch 2 of 3), best
    # ranked exactly as last (the curves were still rising) and ema's rank correlation with the
    # final epoch was +0.03 higher on average, 95% interval [-0.35, +0.41] over the searches: a
    # tie, so the default stays what ASHA compared before the option existed.
    judge: Literal["last", "best", "ema"] = doc(
        "what ASHA compares at a rung (column judged_METRIC): the metric's last value, its best so far, "
        "or an exponential moving average", "last")
    ema: float = doc("judge ema: weight kept by the previous average each epoch, in [0, 1) "
                     "(0 = the last value)", 0.5)

    def rungs(self, max_epochs: int) -> list[int]:
        """Epochs at which ASHA compares trials (and may stop some); none without ASHA."""
        if self.name != "asha":
            return []
        rungs, t = [], float(self.grace_period)
        while t < max_epochs:
            rungs.append(int(t))
            t *= self.reduction_factor
        return rungs


@dataclass
class ResourcesConfig:
    cpus_per_trial: float = doc("CPU cores reserved per trial (fractions allowed)", 1.0)
    gpus_per_trial: float = doc("GPUs per trial; 0.25 packs four trials on one GPU", 0.0)


@dataclass
class OutputConfig:
    results_dir: str = doc("folder holding every experiment", "results")
    name: str = doc("experiment folder name under results_dir", "experiment")
    keep_checkpoints: int = doc("checkpoints kept per trial (the best by the metric); pbt keeps every one "
                                "(a trial it clones restarts later from another trial's checkpoint)", 2)


@dataclass
class RetrainConfig:
    epochs: int = doc("epochs of the final retraining; 0 = the length the pick was judged at (the race's "
                      "epochs after a race, else the search's train.epochs)", 0)
    train_on: Literal["train", "train+val"] = doc("data the final model trains on", "train")


@dataclass
class SelectConfig:
    finalists: int = doc("after the search, the best this many configurations (at most as many as the "
                         "search has) race again over several seeds; under 2 = no race (retrain_best "
                         "takes the search's best); always 0 under scheduler pbt", 3)
    seeds: int = doc("runs of each finalist, seeded train.seed, +1, ...; a search trial with the same "
                     "configuration, seed and epochs counts as one", 3)
    epochs: int = doc("epochs of each race run; 0 = train.epochs", 0)


SECTIONS: dict[str, type] = {
    "dataset": DatasetConfig,
    "augment": AugmentConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "search": SearchConfig,
    "scheduler": SchedulerConfig,
    "resources": ResourcesConfig,
    "output": OutputConfig,
    "retrain": RetrainConfig,
    "select": SelectConfig,
}

# Only these sections describe a trial, so only their fields may be searched.
SEARCHABLE_SECTIONS = ("model", "train", "augment")
