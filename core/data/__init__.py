"""Data: sources, decoding, validation, sampling, splits and augmentation."""
