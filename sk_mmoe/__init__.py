"""sk-mmoe: Multi-gate Mixture-of-Experts for multi-task tabular data, the scikit-learn way."""

from ._estimator import MMoERegressorClassifier
from ._persistence import load_model, save_model
from ._tasks import TaskKindWarning, infer_task_kind
from .exceptions import DistributedTrainingError, NonFiniteLossError
from .export import export_onnx, onnx_inputs
from .metrics import make_task_scorer, task_scores
from .sources import ArrowSource, ParquetSource

__version__ = "0.1.0"

__all__ = [
    "ArrowSource",
    "DistributedTrainingError",
    "MMoERegressorClassifier",
    "NonFiniteLossError",
    "TaskKindWarning",
    "export_onnx",
    "infer_task_kind",
    "load_model",
    "make_task_scorer",
    "onnx_inputs",
    "ParquetSource",
    "save_model",
    "task_scores",
    "__version__",
]
