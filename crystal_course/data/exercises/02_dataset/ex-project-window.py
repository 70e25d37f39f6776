from otter.test_files import test_case

OK_FORMAT = False

name = "ex-project-window"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(level, checks):
    checks.check_tolerance_window(level)

