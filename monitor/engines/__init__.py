"""Other engines that evaluate monitors over the sealed history (the embedded one is
``monitor.evaluation`` over DuckDB). Each imports its third-party engine lazily: it is an
optional extra, not a dependency of the service."""
