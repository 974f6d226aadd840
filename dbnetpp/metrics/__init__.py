"""Detection metrics (registered in METRICS) and the ICDAR2015 evaluation protocol."""
from .det_metric import DetMetric, ImageInput, build_metric
from .evaluate import evaluate_paths
from .icdar_eval import PROTOCOLS, Sample, SampleResult, evaluate_samples, metrics_from_counts
from .records import ImageRecord, sum_record_counts
from .samples import COUNT_KEYS

__all__ = ["DetMetric", "ImageInput", "ImageRecord", "build_metric", "sum_record_counts", "evaluate_paths", "PROTOCOLS",
           "Sample", "SampleResult", "evaluate_samples", "metrics_from_counts", "COUNT_KEYS"]
