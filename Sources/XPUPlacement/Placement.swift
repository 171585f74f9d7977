// Placeholder: the placement policies arrive with the pool issue.
