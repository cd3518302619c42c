"""The core service: settings, model registry, prediction-log store, ingestion, client."""
