"""Training: the window split, XGBoost on CPU or GPU, MLflow runs, the gate, promotion and review.

``fit`` (features, time split, device, XGBoost), ``experiment`` (one MLflow parent run and its
trials), ``plan`` (the contracts between a train run's tasks), ``evaluation`` (holdout metrics),
``gate`` (challenger against champion), ``promotion`` (the pure promotion rule), ``review`` (what an
approver sees and what their answer records). Pure Python, no Airflow import.

Named ``training`` rather than ``train`` because registered models import ``mlops.training``: the
names of the old ``mlops.training`` module resolve here, lazily, so such a model still loads.
"""

from mlops import names_of

__getattr__ = names_of(__name__, "fit")
