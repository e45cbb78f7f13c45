"""The test project's app: an audit log and a model with soft deletes."""
