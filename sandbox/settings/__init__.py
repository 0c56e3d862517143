"""Task settings for deployments: the tasks a policy works, and how its work is checked."""

from sandbox.settings.tiny_code import CodeTask, CodeTest, TaskSetError, load_tasks

__all__ = ["CodeTask", "CodeTest", "TaskSetError", "load_tasks"]
