"""Everything Ray Tune: param space, searchers, schedulers, the trial adapter, the driver-side
callbacks, the live table and the Tuner itself (build.py). The rest of tune_app knows nothing of
Ray: training is plain PyTorch (training.py), and search.py keeps the command line and the
experiment's lifecycle.

Adding a searcher or a scheduler is one decorated class in searchers.py or schedulers.py, plus
its name in config.py's Literal and its README row. Importing this package imports no Ray:
the spec checks its searcher and scheduler entries before Ray starts.
"""
