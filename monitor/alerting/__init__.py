"""The on-call alert pipeline and its receivers.

``alerts`` (state), ``silences``, ``groups`` (one notification per group of alerts),
``outbox`` (durable delivery), ``notice`` (the pipeline → receiver contract), ``pipeline``
(the stages, assembled by ``build_pipeline``) and ``notify/`` (the ``Notifier`` interface and
one package per receiver: ``slack/``, ``log``).
"""
