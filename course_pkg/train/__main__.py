"""``python -m course_pkg.train`` (and ``torchrun ... -m course_pkg.train``): the training command line.

The command line itself is :mod:`course_pkg.cli.train`; nothing imports this module.
"""

from course_pkg.cli.train import main

if __name__ == "__main__":
    main()
