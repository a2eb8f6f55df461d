"""The command line's commands, one module each, over shared options (``options``).

The only place in ``augtool/`` and ``model/`` that imports click: the library knows
no terminal. Each command module imports its heavy dependencies (OpenCV, h5py,
torch) inside the command, so ``augtool --help`` stays fast.
"""
