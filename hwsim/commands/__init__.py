"""One module per ``hwsim`` sub-command.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Heavy imports (torch, simpy, matplotlib) belong inside ``run`` so ``hwsim --help`` is fast.
"""
