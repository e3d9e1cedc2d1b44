"""tune_app: hyperparameter search for small CNN image classifiers on Ray Tune."""

__version__ = "0.1.0"
