"""The core types every other part builds on: a context and its messages (`context`), the run's
events (`events`), one episode's record (`episode`), the generic registry, seeding, the signal
vocabulary and the prompt templates. Nothing here imports a model client, Ray or a game."""
