"""Core of the toolkit: HTTP, errors, sync facade, bulk runner, DataFrames, credentials, redaction."""
