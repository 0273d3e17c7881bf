"""``python -m bulkformer``: the same command line as the ``bulkformer`` program."""

from bulkformer.cli import main

if __name__ == "__main__":
    main()
