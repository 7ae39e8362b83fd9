"""voiceid's pipeline: decoding, features, training and the model bundle."""

import os

# TensorFlow's C++ info and warning logs are noise for a CLI user (absl's few lines from before
# its logging starts cannot be silenced this way).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
