"""The command line's commands, ``*_cmd`` modules, over shared flags (``flags``).

The only place in ``augtool/`` and ``model/`` that imports click: the library knows
no terminal. Each command parses its flags, makes one call of the public API
(``import augtool``; ``model`` for training), prints what it returns
(``summary``) and turns errors into exit codes (``exit_codes``). Heavy
dependencies are imported inside the command, so ``augtool --help`` stays fast.
"""
