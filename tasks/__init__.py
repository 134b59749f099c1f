"""Task families (one module each) and their dataset loaders (``tasks/loaders``)."""

from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport, Task

__all__ = ["Generated", "InvalidOutput", "ScoreReport", "Task"]
