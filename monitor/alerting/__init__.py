"""The on-call alert pipeline and its receivers.

``alerts`` (state), ``silences``, ``routing`` (the Alertmanager-style routing tree: which
receivers an alert goes to), ``groups`` (one notification per group of alerts and receiver),
``outbox`` (durable delivery), ``notice`` (the pipeline → receiver contract), ``pipeline``
(the stages, assembled by ``build_pipeline``) and ``notify/`` (the ``Notifier`` interface, the
receivers configured from settings, and one package per receiver: ``slack/``, ``webhook/``,
``pagerduty/``, ``email/``, ``log``). See docs/alerting.md.
"""
