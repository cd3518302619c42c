"""Label Studio backend: projects from model schemas, tasks with pre-annotations, annotations back.

The annotators' tool is Label Studio (OSS, run by ``deploy/label-studio/launch.py``); loopwatch
owns the queue state. This package is the client side only — it never touches loopwatch's store:

>>> from labeling.label_studio import LabelStudioBackend, TaskIn          # doctest: +SKIP
>>> ls = LabelStudioBackend("http://127.0.0.1:8081", token)               # doctest: +SKIP
>>> project = ls.ensure_project(schema)                                   # doctest: +SKIP
>>> ls.import_tasks(project, [TaskIn("p-1", {"speed_kmh": 72.5}, "brake", 0.91, "3.1.0", "uncertainty")])  # doctest: +SKIP
>>> ls.fetch_annotations(project)                                         # doctest: +SKIP
"""

from labeling.label_studio.client import LabelStudioBackend
from labeling.label_studio.config import labeling_config, project_title, task_data
from labeling.label_studio.errors import LabelStudioError, LabelStudioProblem, LabelStudioUnavailable
from labeling.label_studio.models import AnnotationOut, TaskIn, WebhookEvent
from labeling.label_studio.protocol import LabelingBackend
from labeling.label_studio.webhook import WEBHOOK_SECRET_HEADER, parse_webhook, secret_matches

__all__ = [
    "WEBHOOK_SECRET_HEADER",
    "AnnotationOut",
    "LabelStudioBackend",
    "LabelStudioError",
    "LabelStudioProblem",
    "LabelStudioUnavailable",
    "LabelingBackend",
    "TaskIn",
    "WebhookEvent",
    "labeling_config",
    "parse_webhook",
    "project_title",
    "secret_matches",
    "task_data",
]
