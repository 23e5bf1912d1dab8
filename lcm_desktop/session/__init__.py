"""The window's model, apart from any widget (no Qt, no torch): the inputs (``state.Session``), the job
queue the app and the API share (``jobs.JobQueue``), the one engine thread that runs it (``runner``), and
when Live starts the next job (``live.LiveScheduler``).  The GUI binds widgets to these; tests drive them
without a window."""
