"""Streaming sources: predictions consumed from a broker (MQTT or Kafka).

``sources`` declares and stores them; ``ingest`` turns one message into stored rows through the
same decoding, validation and store as ``POST /v1/models/{model}/predictions``; ``delivery``
retries a message while the store refuses and tallies what each consumer did; ``mqtt`` and
``kafka`` are the consumers that acknowledge (MQTT) or commit (Kafka) a message only once its
rows are durable; ``runner`` keeps one consumer per declared source.
"""
