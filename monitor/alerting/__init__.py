"""The on-call alert pipeline and its delivery channels (Slack, log).

Channel modules: ``notice`` (the pipeline → channel contract), ``slack_messages`` (Block Kit,
pure), ``slack`` (delivery over the Web API), ``slack_signature`` (trusting button presses).
"""
