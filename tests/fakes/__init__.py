"""Local stand-ins for external services (Slack's Web API), run on loopback in tests."""
