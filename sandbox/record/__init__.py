"""A run's directory as written and read back: its files and header (`runstore`) and the
answers already recorded, which a resume or a replay reuses instead of asking again (`cache`)."""
