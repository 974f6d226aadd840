"""Import every module that registers names, so registries are complete."""
from . import modeling  # noqa: F401
from . import losses  # noqa: F401
from . import data  # noqa: F401
from . import postprocess  # noqa: F401
from . import metrics  # noqa: F401
from . import engine  # noqa: F401
