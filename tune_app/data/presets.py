"""Registered hub datasets: what each one reads and how it is split.

Every preset goes through `hub.load`, so `dataset.path:` pointing at a local copy (or the
shared samples) runs exactly the code that reads the hub.
"""

from __future__ import annotations

from tune_app.data import hub, names

PRESETS: dict[str, hub.HubPreset] = {
    # The official `valid` split is the TEST split; validation is held out of train.
    "tiny-imagenet": hub.HubPreset(
        name="tiny-imagenet", hub_id="zh-plus/tiny-imagenet", train_split="train", test_split="valid",
        test_split_required=True, image_size=64, num_classes=200, rename_classes=names.wordnet_names),
    # Photos of varied sizes (a few greyscale) squashed to 224x224 RGB, as in the reference.
    "cub200": hub.HubPreset(
        name="cub200", hub_id="dpdl-benchmark/caltech_birds2011", train_split="train", test_split="test",
        test_split_required=True, image_size=224, num_classes=200, rename_classes=names.folder_names),
    # Any hub id or saved folder; test is its `test` split, else held out of train.
    "hf": hub.HubPreset(name="hf"),
    # A class_name/*.jpg tree, read by datasets' imagefolder builder.
    "imagefolder": hub.HubPreset(name="imagefolder", imagefolder=True),
}

