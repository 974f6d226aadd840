"""Detection metrics (registered in METRICS) and the ICDAR2015 evaluation protocol."""
from .det_metric import DetMetric
from .distributed import all_reduce_counts, sum_count_dicts
from .evaluate import evaluate_paths
from .icdar_eval import PROTOCOLS, Sample, SampleResult, evaluate_samples, metrics_from_counts

__all__ = ["DetMetric", "all_reduce_counts", "sum_count_dicts", "evaluate_paths", "PROTOCOLS", "Sample",
           "SampleResult", "evaluate_samples", "metrics_from_counts"]
