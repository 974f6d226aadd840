"""Model evaluation, for training and ``tools/eval.py`` alike: sharded runs, per-image records,
report, RRC submission, pictures."""
from .gather import EvalResult, merge_shards, reduce_counts
from ..metrics.records import ImageRecord, sum_record_counts
from .pipeline import evaluate_config, evaluate_in_training, with_report_keys
from .report import build_report, final_line, summary_lines, write_report
from .runner import EvaluationInterrupted, ShardResult, evaluate_shard
from .submission import write_submission
from .visualize import render, select, write_visualisations
from .weights import load_eval_weights, resolve_weights

__all__ = ["EvalResult", "merge_shards", "reduce_counts", "evaluate_config", "evaluate_in_training",
           "with_report_keys", "ImageRecord", "sum_record_counts", "build_report", "final_line", "summary_lines",
           "write_report", "EvaluationInterrupted", "ShardResult", "evaluate_shard", "write_submission", "render",
           "select", "write_visualisations", "load_eval_weights", "resolve_weights"]
