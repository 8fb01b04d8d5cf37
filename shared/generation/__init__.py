"""The work after submit: claiming a creation, running a provider, storing and finishing it."""
