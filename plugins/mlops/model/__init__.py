"""The logged model: the MLflow pyfunc that scores validated rows (``pyfunc``).

Registered versions pickle ``mlops.model.TabularModel``: the name resolves here, lazily (MLflow is
imported only when a model is loaded or logged).
"""

from mlops import names_of

__getattr__ = names_of(__name__, "pyfunc")
