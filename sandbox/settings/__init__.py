"""Task settings for deployments: the tasks a policy works, and how its work is checked."""
