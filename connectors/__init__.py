"""Source connectors: each lands raw data in the bronze zone (one package per source)."""
