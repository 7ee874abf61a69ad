"""bpgrade: the grading machinery of the course *Backpropagation, from its prehistory
to fine-tuning*.

Everything that grades lives here; :mod:`bplib` (the reference library the
chapters teach with) knows nothing of it. Imports run one way: ``bpgrade``
imports ``bplib``, never the reverse.

==========================  ================================================  ============
module                      what it does                                      needs
==========================  ================================================  ============
``bpgrade.checks``          the diagnosing checks that exercise test cells    numpy
                            call (``from bpgrade.checks import ...``)
``bpgrade.language``        the language of an exercise and of the messages   stdlib
                            (``BPGRADE_LANG``, ``_zh`` assignments), the
                            compiled tables ``locale/<language>.json``
``bpgrade.kernel``          the sandboxed kernel: limits, bubblewrap,         stdlib
                            kernel spec
``bpgrade.zygote``          the warm kernel: a zygote per grading worker      stdlib
                            that forks each kernel into a sandbox built like
                            a cold kernel's (the fast path of ``autograde``)
``bpgrade.integrity``       the AST check of student cells                    stdlib
``bpgrade.memo``            answers a grading process keeps for the next      stdlib
                            submission (what a cell's source alone decides)
``bpgrade.repair``          broken notebook structure mended against the      stdlib
                            instructor's cells before grading
``bpgrade.submission``      what the grader takes from a submission folder:   stdlib
                            regular files only (no link followed, no pipe
                            opened), the refusals for the student's notes
``bpgrade.sanitize``        a notebook made safe to render: no script of a    bleach,
                            submission in the feedback or the formgrader      nbconvert
``bpgrade.nbgrader_plugins``  ``SandboxedExecute``, ``CheckIntegrity``,       nbgrader
                            ``RepairNotebook``, ``HideHiddenTests``,
                            ``GuardFiles``, ``SafeNotebookExporter``,
                            ``SanitizeNotebook``
``bpgrade.pool``            the class-wide, crash-safe grader on Dask         nbgrader,
                            (stateless workers, the client writes)            distributed
``bpgrade.report``          the class report: what a class got wrong, from    nbgrader,
                            the gradebook and the autograded notebooks        matplotlib
                            (offline HTML, CSV)
``bpgrade.student``         the student's ``check NOTEBOOK`` command: runs   nbclient
                            a notebook as the grader would, no nbgrader
``bpgrade.course``          throw-away nbgrader courses (tools and tests)     nbgrader
``bpgrade.lms``             grades to Canvas/Moodle/CSV (``nbgrader export``  nbgrader
                            plug-ins, no formula in a cell), the late-penalty
                            plug-in, MathJax inlined into feedback under a
                            Content-Security-Policy (``templates/feedback/``)
==========================  ================================================  ============

The command line is ``python -m bpgrade`` (see :mod:`bpgrade.__main__`).
Importing this package loads nothing but the standard library: the sandbox
launcher (``python -P -m bpgrade kernel``) starts from it.
"""

__version__ = "0.2.0"
