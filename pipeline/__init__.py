"""voiceid's pipeline: decoding, features, training and the model bundle."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU instruction notes) is noise for a CLI user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
