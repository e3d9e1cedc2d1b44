"""Everything Ray Tune: param space, searchers, schedulers, the trial adapter, the driver-side
callbacks, the live table and the Tuner itself (build.py). The rest of tune_app knows nothing of
Ray: training is plain PyTorch (training.py), and search.py keeps the command line and the
experiment's lifecycle.

Adding a searcher or a scheduler is one decorated class in searchers.py or schedulers.py, plus
its name in config.py's Literal and its README row. Importing this package imports no Ray:
the spec checks its searcher and scheduler entries before Ray starts.
"""

import logging
import os

# Ray reads these at import / Tuner construction. We log TensorBoard ourselves (HParams that
# work) and want the classic reporter, whose columns we choose.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# We catch SIGINT ourselves (to know a run was interrupted) and forward it as SIGUSR1, on which
# Tune stops gracefully just as it would on SIGINT.
os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
# Ray's end-of-run analysis warns about each trial an interruption left unstarted; the summary
# table shows them ("not started"), so the warning is noise.
logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
# Every epoch checkpoints by design; Ray's "snapshotting too often" warning is noise here.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
