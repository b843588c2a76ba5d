"""Data: the dataset registry (``datasets.yaml``), audb loading, demo corpora."""
