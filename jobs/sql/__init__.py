"""The shared SQL of the bronze→silver datasets (package data, read by jobs.datasets)."""
