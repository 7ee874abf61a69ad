"""nbgrader configuration of the course: nbgrader's roles mapped onto this repository.

The course root is the folder this file lives in (never an absolute path), the
instructor notebooks are in ``solutions/`` and the student versions that
``nbgrader generate_assignment`` writes are in ``exercises/``.
"""

import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

HERE = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = "backprop"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# An infinite loop in a student's cell costs seconds, not minutes.
c.ExecutePreprocessor.timeout = 15
c.Execute.timeout = 15

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
