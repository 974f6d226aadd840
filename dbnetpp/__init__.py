"""dbnetpp: DBNet / DBNet++ text detection on PaddlePaddle with PaddleOCR-compatible configs."""
# OpenCV must be loaded before paddle: with paddle 2.6 loaded first, OpenCV's PNG codec picks up
# paddle's bundled zlib and fails or crashes.  Importing it here makes every entry point safe.
import warnings

import cv2  # noqa: F401,E402  (imported for its side effect on library load order)

# Paddle warns on import, in every process, that no ccache is installed (it matters only when compiling C++
# extensions, which this project never does); keep it out of the tools' output.
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)

__version__ = "0.1.0"
