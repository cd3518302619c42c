"""Streaming sources: predictions consumed from a broker (MQTT now; Kafka declared, not consumed yet).

``sources`` declares and stores them; ``ingest`` turns one message into stored rows through the
same decoding, validation and store as ``POST /v1/models/{model}/predictions``; ``mqtt`` is the
consumer that acknowledges a message only once its rows are durable.
"""
