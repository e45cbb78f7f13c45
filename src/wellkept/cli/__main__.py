"""``python -m wellkept`` is the same as the ``wellkept`` command."""

from wellkept.cli import main

main()
