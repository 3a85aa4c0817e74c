"""The logical clock: every stage acts as of its partition, never on the wall clock.

``logical`` says when a decision takes effect, in which order decisions fall, and whether the past
of a partition is settled (with the training records it reads); ``window`` is the as-of window of
validated partitions a training run reads. Pure Python, no Airflow import.
"""

from mlops import names_of

__getattr__ = names_of(__name__, "logical")
