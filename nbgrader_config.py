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
# Each exercise is written as text, solutions/exNN_name/exNN_name.md, and built into the
# .ipynb beside it (`make exercises`); the text source holds the solutions and hidden
# tests, so it is never copied into a release (nor into submitted/ or feedback/).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "ex[0-9][0-9]_*.md"]

# An infinite loop in a student's cell costs seconds, not minutes.
c.ExecutePreprocessor.timeout = 15
c.Execute.timeout = 15

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# --- Feedback: each failure's message, never the hidden tests' source --------
# nbgrader writes the hidden tests back into autograded notebooks and its default
# feedback renders them (upstream #917, #1363). HideHiddenTests (bpgrade/nbgrader_plugins.py)
# removes them, and cuts the tracebacks of those cells to "ename: evalue", after the
# grades are read and before the HTML export. The list replaces nbgrader 0.9's default
# [GetGrades, CSSHTMLHeaderPreprocessor], so `nbgrader generate_feedback` and the
# formgrader's "generate feedback" button both produce safe feedback.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

from bpgrade.nbgrader_plugins import HideHiddenTests  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]

# --- Collecting submissions downloaded from an LMS (`nbgrader zip_collect`) ---
# Put the LMS download (zip files or notebooks) in downloaded/<assignment>/archive/.
# The file names must look like "<student_id>_<anything>_<assignment>.ipynb", e.g.
# Canvas's "jdoe_late_12345_67890_ex04_backward.ipynb" or Moodle-style exports renamed
# to "jdoe_ex04_backward.ipynb"; file_id is the notebook's name in the assignment.
c.ZipCollectApp.archive_directory = "archive"
c.ZipCollectApp.extracted_directory = "extracted"
c.FileNameCollectorPlugin.named_regexp = (
    r"^(?:.*/)?(?P<student_id>[A-Za-z0-9.\-]+)_(?:.*_)?(?P<file_id>ex\d\d_[a-z_]+\.ipynb)$"
)

# --- Sandboxed, limited, integrity-checked autograding -----------------------
# bubblewrap kernel, resource limits, CheckIntegrity, missing test cells restored:
# see nbgrader_sandbox.py and chapters/security.md.
load_subconfig(os.path.join(HERE, "nbgrader_sandbox.py"))  # noqa: F821 - provided by traitlets
