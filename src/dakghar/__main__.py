"""``python -m dakghar`` runs the CLI."""

from dakghar.cli.main import main

main()
