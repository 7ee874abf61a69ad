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
# "*.bpgrade-refused": links and special files of a submission, set aside before grading
# (bpgrade/submission.py, nbgrader_sandbox.py): nbgrader must never copy them.
from bpgrade.submission import IGNORE_PATTERN  # noqa: E402

c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "ex[0-9][0-9]_*.md", IGNORE_PATTERN]

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

# --- Feedback that reads offline -----------------------------------------------
# nbgrader's feedback template loads MathJax 2.7.7 from a public CDN (offline: raw LaTeX).
# bpgrade/templates/feedback/ is searched before nbgrader's own template folder and
# replaces only its mathjax() macro: MathJax 3 (SVG output) inlined into each page from
# the sphinx-mathjax-offline package (about 2 MB per feedback file, no request at all).
import nbgrader as _nbgrader  # noqa: E402

from bpgrade import lms  # noqa: E402

c.HTMLExporter.extra_template_basedirs = [
    str(lms.TEMPLATES),
    os.path.join(os.path.dirname(_nbgrader.__file__), "server_extensions", "formgrader",
                 "templates"),
]
c.HTMLExporter.filters = {"offline_mathjax": "bpgrade.lms.offline_mathjax",
                          "feedback_head": "bpgrade.lms.feedback_head",
                          "markdown2html": "bpgrade.sanitize.markdown2html"}

# --- No script of a submission runs where its HTML is shown ---------------------
# A submission's HTML, SVG and JavaScript outputs and the HTML in its markdown would run
# in the feedback page and in the formgrader (with the instructor's Jupyter session).
# Autograde cleans the notebook it stores (SanitizeNotebook, nbgrader_sandbox.py); every
# HTML export (the feedback, the formgrader's view) cleans the notebook again
# (preprocessors below) and each markdown cell's HTML (the markdown2html filter above);
# the feedback page also carries a strict Content-Security-Policy (feedback_head).
# See chapters/security.md.
c.HTMLExporter.preprocessors = ["bpgrade.nbgrader_plugins.SanitizeNotebook"]

# --- Due dates and late penalties ---------------------------------------------
# Due dates live in the gradebook: `nbgrader db assignment add ex04_backward
# --duedate="2026-03-06 17:00:00 Europe/Paris"` (a date with no zone is UTC). A submission's
# time is its timestamp.txt, written by `nbgrader submit`/`collect` in c.Exchange.timezone
# with c.Exchange.timestamp_format. Late work loses 10 % of the notebook's maximum score
# per started day, at most 50 % (bpgrade.lms.PercentPerDayPenalty); autograde stores the
# penalty, the feedback shows it and the exports subtract it.
c.Exchange.timezone = "UTC"
c.AssignLatePenalties.plugin_class = lms.PercentPerDayPenalty
c.PercentPerDayPenalty.percent_per_day = 10.0
c.PercentPerDayPenalty.max_percent = 50.0
c.PercentPerDayPenalty.grace_minutes = 0.0

# --- Grades to the LMS (`nbgrader export`) --------------------------------------
# Default: nbgrader's own grades.csv columns, written by bpgrade.lms.CsvExportPlugin (with
# the csv module, and no cell a spreadsheet would read as a formula: ids and names that
# start with = + - @ get a leading quote). Canvas: `nbgrader export
# --exporter=bpgrade.lms.CanvasExportPlugin --to canvas.csv`; Moodle:
# bpgrade.lms.MoodleExportPlugin; one row per student and assignment:
# bpgrade.lms.PerStudentExportPlugin. To make another one the default, set it here.
c.ExportApp.plugin_class = "bpgrade.lms.CsvExportPlugin"

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
