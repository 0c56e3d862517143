"""The run machinery, top-down: the runner (`runner`) plans a run from its config; drivers turn
each game's episodes into contexts (`drivers`), the dispatcher hands them to an engine in batches
(`dispatch`, `batching`), code checks are planned and preflighted (`checks`), and the recorded
events are scored into the summary (`scoring`)."""
