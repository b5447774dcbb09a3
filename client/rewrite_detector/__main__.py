"""``python -m rewrite_detector``: the CLI without the console script."""

from rewrite_detector.cli import main

if __name__ == "__main__":
    main()
