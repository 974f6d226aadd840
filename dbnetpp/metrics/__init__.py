"""Detection metrics (registered in METRICS) and the ICDAR2015 evaluation protocol."""
from .det_metric import DetMetric
from .evaluate import evaluate_paths
from .icdar_eval import PROTOCOLS, Sample, SampleResult, evaluate_samples, metrics_from_counts
from .samples import COUNT_KEYS

__all__ = ["DetMetric", "evaluate_paths", "PROTOCOLS", "Sample", "SampleResult", "evaluate_samples",
           "metrics_from_counts", "COUNT_KEYS"]
