"""The live table Ray prints while a search or race runs, with tune_app's names in it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tune_app.hparams import HP_KEY, field_name, ray_column
from tune_app.spec import SEED_KEY

if TYPE_CHECKING:
    from tune_app.spec import ExperimentSpec


def make_reporter(spec: "ExperimentSpec"):
    import re

    from ray.tune import CLIReporter

    class Reporter(CLIReporter):
        """Ray's table, with its header pointing at what users open: Ray calls the driver's staging
        folder (/tmp/ray/.../driver_artifacts) the "Result logdir", and names the best trial by
        its internal id ("a9cc1_00002", parameters "hp/train.lr") while the table says trial_00002.
        Rewrites the printed text only (`_print`: Ray is pinned, see setup.cfg)."""

        results = ""

        def report(self, trials, done, *sys_info):
            self.results = trials[0].remote_experiment_path if trials else ""
            super().report(trials, done, *sys_info)

        def _print(self, msg: str) -> None:
            where = f"Results: {self.results}  (tensorboard --logdir {os.path.dirname(self.results)})"
            msg = re.sub(r"^Result logdir: .*$", lambda _: where, msg, flags=re.M)
            msg = re.sub(r"Current best trial: \S+_(\d+) with", r"Current best trial: trial_\1 with", msg)
            msg = re.sub(rf"'{HP_KEY}/[a-z]+\.([\w.]+)'", r"'\1'", msg)
            super()._print(msg)

    return Reporter(
        # The seed column tells apart the runs of one configuration (search.num_samples > 1).
        parameter_columns={ray_column(k): field_name(k)
                           for k in [*spec.space, *([SEED_KEY] if len(spec.seeds) > 1 else [])]},
        metric_columns=live_metric_columns(spec.search.metric),
        max_report_frequency=15,
        sort_by_metric=True,
    )


def live_metric_columns(metric: str) -> dict[str, str]:
    from tune_app.metric_names import judged_column

    columns = {"epoch": "epoch", "train_loss": "train_loss", "val_loss": "val_loss", "val_accuracy": "val_acc"}
    return {**columns, metric: columns.get(metric, metric), judged_column(metric): "judged"}


