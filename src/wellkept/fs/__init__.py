"""Safe work on the host's files: walking without following symlinks or crossing filesystems,
telling files other processes are writing or have locked, compressing durably in place.

The file task kinds (`log_rotate`, `file_cleanup`, `consolidate`) build on these; none of them
touches a path by name after it has been checked: they act through the descriptor of the
folder they found it in, so a folder swapped for a symlink in between is refused, not followed.
"""
