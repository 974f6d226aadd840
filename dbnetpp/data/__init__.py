"""Data: ICDAR GT reading, PaddleOCR label files, SimpleDataSet, transforms and the loader."""
from . import transforms  # noqa: F401  (registers the TRANSFORMS)
from . import dataset  # noqa: F401  (registers SimpleDataSet)
from . import loader  # noqa: F401
from .dataset import FailedSample, SimpleDataSet  # noqa: F401
from .loader import SKIPPED_KEY, build_dataloader, num_samples  # noqa: F401
